// Package journalvacuum is the remediation action journal_vacuum: it has
// journalctl remove archived journal files beyond a size or an age.
package journalvacuum

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/space"
)

// journalVacuum removes archived systemd journal files beyond a size or an
// age: journalctl --vacuum-size=SIZE --vacuum-time=SECONDSs.
type journalVacuum struct {
	command string
	params  Params
	root    string // the host's root (Env.Root), where the journals are measured
}

func (j *journalVacuum) Name() string { return "journal_vacuum" }

func (j *journalVacuum) argv() ([]string, error) {
	argv := []string{j.command}
	if s := j.params.VacuumSize; s != "" {
		if !vacuumSizeRe.MatchString(s) {
			return nil, fmt.Errorf("vacuum_size %q: want a size such as 500M", s)
		}
		argv = append(argv, "--vacuum-size="+s)
	}
	if t := j.params.VacuumTime.D(); t > 0 {
		argv = append(argv, fmt.Sprintf("--vacuum-time=%ds", int64(t.Seconds())))
	}
	if len(argv) == 1 {
		return nil, errors.New("journal_vacuum needs vacuum_size or vacuum_time")
	}
	return argv, nil
}

func (j *journalVacuum) Plan(ctx context.Context, a remediate.Alert) (remediate.Plan, error) {
	argv, err := j.argv()
	if err != nil {
		return remediate.Plan{}, err
	}
	return remediate.Plan{Action: j.Name(), Text: "run " + remediate.ArgvString(argv) + " (removes archived journal files only; the active ones stay)",
		Expect: "space freed by archived journal files in " + strings.Join(journalDirs, ", "), Data: argv}, nil
}

// journalDirs are where journalctl vacuums the system journals.
var journalDirs = []string{"/var/log/journal", "/run/log/journal"}

// archived says whether a file name is an archived journal file, the only
// kind a vacuum removes: system@….journal, and system@….journal~ that
// journald set aside as dirty. The active ones (system.journal) stay.
func archived(name string) bool {
	return strings.Contains(name, "@") && (strings.HasSuffix(name, ".journal") || strings.HasSuffix(name, ".journal~"))
}

// Apply runs the vacuum and measures the archived journal files on disk
// before and after: the space freed is the effect. journalctl exits 0 when
// it could not delete (a read-only /var/log/journal) or had nothing to.
func (j *journalVacuum) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("journal_vacuum: not a journal_vacuum plan")
	}
	dirs := space.Under(j.root, journalDirs...)
	before := space.MeasureAll(ctx, dirs, archived)
	r, err := remediate.RunCommand(ctx, argv...)
	after := space.MeasureAll(ctx, dirs, archived)
	freed, effect, none := space.Freed("archived journals", before, after)
	text := "journal vacuumed, freed " + textfmt.HumanBytes(freed)
	if freed <= 0 {
		text = remediate.Exited0(argv) + ", freed 0 B"
	}
	o, err := remediate.CommandOutcome(r, err, text)
	o.FreedBytes, o.Effect, o.NoEffect = freed, effect, none
	return o, err
}

var vacuumSizeRe = regexp.MustCompile(`^[0-9]+[KMGT]?$`)
