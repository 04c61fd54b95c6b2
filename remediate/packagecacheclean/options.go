package packagecacheclean

import (
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate"
	"github.com/l2agent/l2agent/remediate/internal/pkgmgr"
)

// Its own keys are the package manager's (pkgmgr.Settings: manager,
// command); by default it may run for 5 minutes, every 30 minutes.
func init() {
	remediate.Register("package_cache_clean", func(s configs.Options, _ configs.Params, ev remediate.Env) (remediate.Action, error) {
		o := s.(*pkgmgr.Settings)
		return &packageCacheClean{manager: o.Manager, command: o.Command, root: ev.Root}, nil
	}, func() configs.Options {
		return pkgmgr.NewSettings(pkgmgr.Policy{Action: "package_cache_clean", Timeout: 5 * time.Minute, Cooldown: 30 * time.Minute})
	}, nil)
}
