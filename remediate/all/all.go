// Package all links in every remediation action: each registers itself
// from init(). Adding an action is one unit under remediate/ and one line
// here.
package all

import (
	_ "github.com/l2agent/l2agent/remediate/antivirusupdate"   // ClamAV signatures
	_ "github.com/l2agent/l2agent/remediate/diskcleanup"       // old files in allowlisted directories
	_ "github.com/l2agent/l2agent/remediate/journalvacuum"     // archived systemd journal files
	_ "github.com/l2agent/l2agent/remediate/logrotate"         // force one allowlisted logrotate config
	_ "github.com/l2agent/l2agent/remediate/packagecacheclean" // the package manager's download cache
	_ "github.com/l2agent/l2agent/remediate/securityupdates"   // pending security updates, in a maintenance window
	_ "github.com/l2agent/l2agent/remediate/servicerestart"    // restart one allowlisted systemd unit
)
