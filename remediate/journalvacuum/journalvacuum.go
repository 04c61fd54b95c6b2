// Package journalvacuum is the remediation action journal_vacuum: it has
// journalctl remove archived journal files beyond a size or an age.
package journalvacuum

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
)

// journalVacuum removes archived systemd journal files beyond a size or an
// age: journalctl --vacuum-size=SIZE --vacuum-time=SECONDSs.
type journalVacuum struct {
	command string
	params  Params
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
	return remediate.Plan{Action: j.Name(), Text: "run " + remediate.ArgvString(argv) + " (removes archived journal files only; the active ones stay)", Data: argv}, nil
}

func (j *journalVacuum) Apply(ctx context.Context, p remediate.Plan) (remediate.Outcome, error) {
	argv, ok := p.Data.([]string)
	if !ok {
		return remediate.Outcome{}, errors.New("journal_vacuum: not a journal_vacuum plan")
	}
	r, err := remediate.RunCommand(ctx, argv...)
	freed := journalFreed(r.Output)
	o, err := remediate.CommandOutcome(r, err, "journal vacuumed, freed "+textfmt.HumanBytes(freed))
	o.FreedBytes = freed
	return o, err
}

var vacuumSizeRe = regexp.MustCompile(`^[0-9]+[KMGT]?$`)

var freedRe = regexp.MustCompile(`freed ([0-9.]+)([BKMGTP]?)`)

// journalFreed sums "freed 1.2G" of journalctl's vacuum messages, e.g.
// "Vacuuming done, freed 96.0M of archived journals from /var/log/journal."
func journalFreed(out string) int64 {
	var total float64
	for _, m := range freedRe.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		mult := 1.0
		if m[2] != "" && m[2] != "B" {
			mult = float64(int64(1) << (10 * (strings.Index("BKMGTP", m[2]))))
		}
		total += v * mult
	}
	return int64(total)
}
