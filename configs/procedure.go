package configs

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Procedure is the standard procedure for one metric, written for an L2
// engineer: what the alert means, the first checks to make, the safe fixes
// and their risks, and when to escalate. Every metric of every built-in
// check has one (each unit's procedures.yaml); a ticket shows it when its
// rule has no runbook_url. An admin replaces or extends it per metric, or
// per check and metric, with the entries of runbook_file.
type Procedure struct {
	Metric      string   `yaml:"metric"`
	Check       string   `yaml:"check"`  // runbook_file: only for the check of this name
	Extend      bool     `yaml:"extend"` // runbook_file: add to the built-in procedure instead of replacing it
	Meaning     string   `yaml:"meaning"`
	FirstChecks []string `yaml:"first_checks"`
	SafeFixes   []Fix    `yaml:"safe_fixes"`
	Escalate    string   `yaml:"escalate"`
}

// Fix is one safe fix of a procedure and its risk.
type Fix struct {
	Do   string `yaml:"do"`
	Risk string `yaml:"risk"`
}

// procedureFile is the layout of a procedures.yaml and of a runbook_file.
type procedureFile struct {
	Procedures []Procedure `yaml:"procedures"`
}

// DocsBase is where a unit's README is read on the web, for the link a
// ticket gives to a built-in procedure.
const DocsBase = "https://github.com/l2agent/l2agent/blob/main/"

var (
	proceduresMu sync.RWMutex
	procedures   = map[string]Procedure{} // built-in, by metric
	procedureDoc = map[string]string{}    // metric → the README section it comes from
)

// RegisterProcedures adds the built-in procedures of a check kind, the
// procedures.yaml its unit embeds (data), documented in the README at
// docPath (relative to the repository). It panics on a file that does not
// decode or names a metric twice: a unit test walks every kind.
func RegisterProcedures(docPath string, data []byte) {
	var f procedureFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		panic(fmt.Sprintf("procedures of %s: %v", docPath, err))
	}
	proceduresMu.Lock()
	defer proceduresMu.Unlock()
	for _, p := range f.Procedures {
		if _, dup := procedures[p.Metric]; dup || p.Metric == "" {
			panic(fmt.Sprintf("procedures of %s: metric %q empty or given twice", docPath, p.Metric))
		}
		procedures[p.Metric] = p
		procedureDoc[p.Metric] = docPath
	}
}

// BuiltinProcedure is the built-in procedure of metric and the README
// section it is documented in.
func BuiltinProcedure(metric string) (Procedure, string, bool) {
	proceduresMu.RLock()
	defer proceduresMu.RUnlock()
	p, ok := procedures[metric]
	return p, procedureDoc[metric], ok
}

// ProcedureMetrics lists the metrics that have a built-in procedure.
func ProcedureMetrics() []string {
	proceduresMu.RLock()
	defer proceduresMu.RUnlock()
	return slices.Sorted(maps.Keys(procedures))
}

// ProcedureFor is the procedure a ticket of check's metric shows: the
// runbook_file's entry for that check and metric, else its entry for the
// metric, else the built-in one; an entry with extend adds its lines to
// the built-in procedure. ok is false when there is none.
func (c *Config) ProcedureFor(check, metric string) (p Procedure, doc string, ok bool) {
	builtin, doc, hasBuiltin := BuiltinProcedure(metric)
	var own *Procedure
	for i := range c.Runbooks {
		r := &c.Runbooks[i]
		if r.Metric == metric && (r.Check == check || r.Check == "" && own == nil) {
			own = r
		}
	}
	switch {
	case own == nil:
		return builtin, doc, hasBuiltin
	case own.Extend && hasBuiltin:
		p = builtin
		p.Meaning = strings.TrimSpace(strings.Join([]string{p.Meaning, own.Meaning}, " "))
		p.FirstChecks = append(slices.Clone(p.FirstChecks), own.FirstChecks...)
		p.SafeFixes = append(slices.Clone(p.SafeFixes), own.SafeFixes...)
		p.Escalate = strings.TrimSpace(strings.Join([]string{p.Escalate, own.Escalate}, " "))
		return p, doc, true
	}
	return *own, "", true
}

// loadRunbooks reads and validates runbook_file (a path relative to the
// config file's directory): every entry names a metric some check kind
// emits, a check of this config that emits it when it names one, and says
// something. Its problems are positioned in that file.
func (c *Config) loadRunbooks(configFile string, at pos) Errors {
	if c.RunbookFile == "" {
		return nil
	}
	path := c.RunbookFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(configFile), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Errors{{File: configFile, Line: max(at.line, 1), Column: max(at.col, 1), Message: fmt.Sprintf("runbook_file: %v", err)}}
	}
	var f procedureFile
	d := &decoder{file: path, pos: map[string]pos{}, keys: map[string]pos{}, nonPositive: map[string]Duration{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Errors{syntaxError(path, err)}
	}
	if len(doc.Content) > 0 {
		d.decode(doc.Content[0], reflect.ValueOf(&f).Elem(), "")
	}
	if len(d.errs) > 0 {
		return d.errs
	}
	v := &validation{d: d}
	c.validateRunbooks(v, f.Procedures)
	if len(v.errs) == 0 {
		c.Runbooks = f.Procedures
	}
	return v.errs
}

func (c *Config) validateRunbooks(v *validation, ps []Procedure) {
	emits := map[string][]string{} // metric → the check names of this config that emit it
	known := map[string]bool{}
	for _, k := range CheckKinds.Names() {
		kind, _ := CheckKinds.Lookup(k)
		for _, m := range kind.Metrics {
			known[m] = true
			for _, ch := range c.Checks {
				if ch.Kind == k {
					emits[m] = append(emits[m], ch.Name)
				}
			}
		}
	}
	for i, p := range ps {
		base := fmt.Sprintf("procedures[%d]", i)
		switch {
		case !known[p.Metric]:
			v.errf(base+".metric", "procedure %d: unknown metric %q (a metric of a check kind, without the l2agent_ prefix)", i+1, p.Metric)
		case p.Check != "" && !slices.Contains(emits[p.Metric], p.Check):
			v.errf(base+".check", "procedure %d: no check %q of this config emits %s", i+1, p.Check, p.Metric)
		}
		if strings.TrimSpace(p.Meaning) == "" && len(p.FirstChecks) == 0 && len(p.SafeFixes) == 0 && p.Escalate == "" {
			v.errf(base, "procedure %d (%s): empty: give meaning, first_checks, safe_fixes or escalate", i+1, p.Metric)
		}
	}
}

// Text renders p for a ticket, with the link to doc when it is built in.
func (p Procedure) Text(doc string) string {
	var b strings.Builder
	if p.Meaning != "" {
		b.WriteString("  What it means: " + strings.TrimSpace(p.Meaning) + "\n")
	}
	if len(p.FirstChecks) > 0 {
		b.WriteString("  First checks:\n")
		for _, s := range p.FirstChecks {
			b.WriteString("    - " + strings.TrimSpace(s) + "\n")
		}
	}
	if len(p.SafeFixes) > 0 {
		b.WriteString("  Safe fixes:\n")
		for _, f := range p.SafeFixes {
			b.WriteString("    - " + strings.TrimSpace(f.Do))
			if f.Risk != "" {
				b.WriteString(" (risk: " + strings.TrimSpace(f.Risk) + ")")
			}
			b.WriteByte('\n')
		}
	}
	if p.Escalate != "" {
		b.WriteString("  Escalate to L3 when: " + strings.TrimSpace(p.Escalate) + "\n")
	}
	if doc != "" {
		b.WriteString("  Reference: " + DocsBase + doc + "\n")
	}
	return b.String()
}
