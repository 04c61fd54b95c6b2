package securityupdates

import (
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/pkgmgr"
)

// Its own keys are the package manager's (pkgmgr.Settings: manager,
// command); by default it may run for an hour, once a day, and only inside
// a maintenance window.
func init() {
	remediate.Register("security_updates", func(s configs.Options, _ configs.Params, ev remediate.Env) (remediate.Action, error) {
		o := s.(*pkgmgr.Settings)
		return &securityUpdates{manager: o.Manager, command: o.Command, root: ev.Root}, nil
	}, func() configs.Options {
		return pkgmgr.NewSettings(pkgmgr.Policy{Action: "security_updates", Timeout: time.Hour, Cooldown: 24 * time.Hour, Window: true, Security: true})
	}, nil)
}
