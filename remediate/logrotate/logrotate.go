// Package logrotate is the remediation action logrotate: it forces one
// allowlisted logrotate config, logrotate -f CONFIG.
package logrotate

import (
	"fmt"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate/internal/allowlisted"
)

// kind is logrotate as a program run on one allowlisted value.
var kind = &allowlisted.Kind{
	Action:   "logrotate",
	Command:  "/usr/sbin/logrotate",
	Args:     []string{"-f"},
	AllowKey: "allow_configs",
	ValueKey: "config",
	Done:     "rotated",
	Check: func(c string) string {
		if !configs.CleanAbs(c) {
			return fmt.Sprintf("allow_configs %q: must be a clean absolute path", c)
		}
		return ""
	},
	Expect:  func(c string) string { return "the logs of " + c + " rotated" },
	Measure: measureLogs,
}
