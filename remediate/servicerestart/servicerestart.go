// Package servicerestart is the remediation action service_restart: it
// restarts one allowlisted systemd unit, systemctl --no-ask-password
// restart UNIT.
package servicerestart

import (
	"fmt"
	"regexp"

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
}
