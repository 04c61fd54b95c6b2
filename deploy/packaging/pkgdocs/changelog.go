package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The changelog is nfpm's (github.com/goreleaser/chglog): nfpm renders it as
// /usr/share/doc/l2agent/changelog.Debian.gz in the .deb and as the rpm's %changelog. Its one
// entry is this build: the commit it is made of and the user-visible changes the README lists
// under "## Changes".

type chglogEntry struct {
	Semver   string         `yaml:"semver"`
	Date     time.Time      `yaml:"date"`
	Packager string         `yaml:"packager"`
	Deb      *chglogDeb     `yaml:"deb,omitempty"`
	Changes  []chglogChange `yaml:"changes"`
}

type chglogDeb struct {
	Urgency       string   `yaml:"urgency"`
	Distributions []string `yaml:"distributions"`
}

type chglogChange struct {
	Commit string `yaml:"commit,omitempty"`
	Note   string `yaml:"note"`
}

// changelogs are the changelog for the .deb and for the rpm.
func changelogs(o options, readmeChanges []string) (deb, rpm []byte, err error) {
	first := fmt.Sprintf("l2agent %s, built from git commit %s of %s.", o.version, o.commit, o.date.Format("2006-01-02"))
	if strings.Contains(o.version, "~git") || strings.Contains(o.version, "+git") {
		first = fmt.Sprintf("Snapshot of git commit %s of %s, not a release.", o.commit, o.date.Format("2006-01-02"))
	}
	changes := []chglogChange{{Commit: o.commit, Note: first}}
	for _, c := range readmeChanges {
		changes = append(changes, chglogChange{Note: shorten(c, maxNote)})
	}
	// The Debian template prints the version as it is: the whole Debian version. The rpm one
	// reads it as semver and prints MAJOR.MINOR.PATCH[-PRERELEASE].
	d := chglogEntry{Semver: o.version + "-" + o.release, Date: o.date, Packager: o.maintainer,
		Deb: &chglogDeb{Urgency: "medium", Distributions: []string{"unstable"}}, Changes: changes}
	r := chglogEntry{Semver: rpmSemver(o.version), Date: o.date, Packager: o.maintainer, Changes: changes}
	if deb, err = yaml.Marshal([]chglogEntry{d}); err != nil {
		return nil, nil, fmt.Errorf("encode the deb changelog: %w", err)
	}
	if rpm, err = yaml.Marshal([]chglogEntry{r}); err != nil {
		return nil, nil, fmt.Errorf("encode the rpm changelog: %w", err)
	}
	return deb, rpm, nil
}

var leadingNumbers = regexp.MustCompile(`^[0-9]+(\.[0-9]+){0,2}`)

// rpmSemver is a semver for the rpm changelog's template: the version's leading numbers, and
// "-snapshot" when more follows (0.0.0~git20261205.8c97ce8 → 0.0.0-snapshot; the entry's
// first line names the exact version).
func rpmSemver(v string) string {
	n := leadingNumbers.FindString(v)
	if n == "" {
		n = "0.0.0"
	}
	if n != v {
		n += "-snapshot"
	}
	return n
}

// readmeChanges are the headlines of the README's "## Changes" section: the bold lead of
// each top-level item, in plain text.
func readmeChanges(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the changes: %w", err)
	}
	var items []string // the section's top-level items, their lines joined
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			in = strings.TrimSpace(l[3:]) == "Changes"
		case !in:
		case strings.HasPrefix(l, "- "):
			items = append(items, l[2:])
		case strings.HasPrefix(l, "  ") && len(items) > 0:
			items[len(items)-1] += " " + strings.TrimSpace(l)
		}
	}
	var out []string
	for _, it := range items {
		lead, _, ok := strings.Cut(strings.TrimPrefix(it, "**"), "**")
		if strings.HasPrefix(it, "**") && ok {
			out = append(out, strings.TrimSuffix(strings.ReplaceAll(lead, "`", ""), "."))
		}
	}
	return out, nil
}

// maxNote keeps a changelog line ("  * " and the note) within the 80 columns
// lintian allows (debian-changelog-line-too-long).
const maxNote = 74

// shorten cuts s to at most n runes at a word boundary, ending it with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n-1])
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "…"
}
