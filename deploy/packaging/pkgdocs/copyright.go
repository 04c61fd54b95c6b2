package main

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
)

// copyright is /usr/share/doc/l2agent/copyright in Debian's machine-readable format (DEP-5):
// l2agent's license, and in the header's comment the Go standard library and every module
// linked into the static binary, each with the license its LICENSE file holds.
func copyright(bin, modcache, maintainer string, date time.Time) ([]byte, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read the modules linked into %s: %w", bin, err)
	}
	var b bytes.Buffer
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	b.WriteString("Upstream-Name: l2agent\n")
	fmt.Fprintf(&b, "Upstream-Contact: %s\n", maintainer)
	b.WriteString("Source: https://github.com/l2agent/l2agent\n")
	b.WriteString("Comment: /usr/bin/l2agent is a static Go binary. Besides l2agent it holds the Go\n")
	fmt.Fprintf(&b, " standard library (%s, BSD-3-Clause, Copyright The Go Authors) and these Go\n", bi.GoVersion)
	b.WriteString(" modules, each under the license of its LICENSE file:\n .\n")
	deps := bi.Deps
	sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
	for _, d := range deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		fmt.Fprintf(&b, " %s %s: %s\n", d.Path, m.Version, moduleLicense(modcache, m.Path, m.Version))
	}
	fmt.Fprintf(&b, "\nFiles: *\nCopyright: %d The l2agent authors\nLicense: Apache-2.0\n", date.Year())
	b.WriteString(apacheLicense)
	return b.Bytes(), nil
}

const apacheLicense = `
License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at
 .
 http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations under
 the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0, can be
 found in "/usr/share/common-licenses/Apache-2.0".
`

// moduleLicense names the license(s) in the module's LICENSE, LICENCE or COPYING files in
// the module cache (SPDX names, Expat for MIT as Debian spells it).
func moduleLicense(modcache, path, version string) string {
	dir := filepath.Join(modcache, escapeModulePath(path)+"@"+version)
	entries, err := os.ReadDir(dir)
	if modcache == "" || err != nil {
		return "see the module's source (not in the module cache here)"
	}
	var kinds []string
	for _, e := range entries {
		n := strings.ToUpper(e.Name())
		if e.IsDir() || !(strings.HasPrefix(n, "LICENSE") || strings.HasPrefix(n, "LICENCE") || strings.HasPrefix(n, "COPYING")) {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, k := range classify(string(text)) {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		return "see the module's LICENSE"
	}
	return strings.Join(kinds, " and ")
}

// classify names the licenses whose wording text holds.
func classify(text string) []string {
	t := strings.Join(strings.Fields(text), " ")
	var out []string
	has := func(s ...string) bool {
		for _, x := range s {
			if !strings.Contains(t, x) {
				return false
			}
		}
		return true
	}
	switch {
	case has("Redistribution and use in source and binary forms", "Neither the name"),
		has("Redistribution and use in source and binary forms", "names of its contributors"):
		out = append(out, "BSD-3-Clause")
	case has("Redistribution and use in source and binary forms"):
		out = append(out, "BSD-2-Clause")
	}
	if has("Permission is hereby granted, free of charge") {
		out = append(out, "Expat")
	}
	if has("Permission to use, copy, modify, and/or distribute") || has("ISC License") {
		out = append(out, "ISC")
	}
	if has("Apache License", "Version 2.0") {
		out = append(out, "Apache-2.0")
	}
	if has("Mozilla Public License", "2.0") {
		out = append(out, "MPL-2.0")
	}
	return out
}

// escapeModulePath is the module cache's spelling of a module path: each upper-case letter
// becomes '!' and its lower case (golang.org/x/mod/module.EscapePath).
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
