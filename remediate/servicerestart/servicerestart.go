// Package servicerestart is the remediation action service_restart: it
// restarts one allowlisted systemd unit, systemctl --no-ask-password
// restart UNIT.
package servicerestart

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/l2agent/l2agent/internal/textfmt"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/allowlisted"
)

var unitRe = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|target|path|mount)$`)

// kind is service_restart as a program run on one allowlisted value.
var kind = &allowlisted.Kind{
	Action:   "service_restart",
	Command:  "/usr/bin/systemctl",
	Args:     []string{"--no-ask-password", "restart"},
	AllowKey: "allow_units",
	ValueKey: "unit",
	Done:     "restarted",
	Check: func(u string) string {
		if !unitRe.MatchString(u) {
			return fmt.Sprintf("%q is not a systemd unit name such as clamav-daemon.service", u)
		}
		return ""
	},
	Expect:  func(u string) string { return u + " active" },
	Measure: measureUnit,
}

// measureUnit asks systemctl is-active for the unit before the restart and
// returns what asks again after it: the effect is the unit active. A unit
// that is inactive, failed or still activating after a restart that exited
// 0 (a Type=simple service that dies at once, a unit in its auto-restart
// loop) is no effect.
func measureUnit(ctx context.Context, r allowlisted.Run) func(context.Context) (string, string) {
	was := activeState(ctx, r.Command, r.Value)
	return func(ctx context.Context) (string, string) {
		now := activeState(ctx, r.Command, r.Value)
		if now == "active" {
			return fmt.Sprintf("%s active (was %s)", r.Value, was), ""
		}
		return "", fmt.Sprintf("unit still inactive (%s is %s after the restart; was %s)", r.Value, now, was)
	}
}

// activeState is the unit's state as systemctl is-active prints it
// (active, inactive, failed, activating, …); it exits 3 for all but active.
func activeState(ctx context.Context, command, unit string) string {
	r, err := remediate.RunCommand(ctx, command, "is-active", unit)
	state, _, _ := strings.Cut(strings.TrimSpace(r.Output), "\n")
	switch {
	case state != "":
		return textfmt.TruncateMark(textfmt.Sanitize(state), 64, "…")
	case err != nil:
		return "unknown (" + err.Error() + ")"
	}
	return "unknown"
}
