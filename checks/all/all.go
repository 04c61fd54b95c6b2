// Package all links in every check kind: each registers itself from
// init(). Adding a check is one unit under checks/ and one line here.
package all

import (
	_ "github.com/l2agent/l2agent/checks/antivirus" // ClamAV, Defender or any EDR/AV: up, signature age, scans
	_ "github.com/l2agent/l2agent/checks/cpu"       // utilization, iowait, load, CPU pressure
	_ "github.com/l2agent/l2agent/checks/disk"      // filesystems: space, inodes, read-only, time to full
	_ "github.com/l2agent/l2agent/checks/memory"    // available memory, swap, OOM kills, memory pressure
	_ "github.com/l2agent/l2agent/checks/mfa"       // second factor for sshd, its PAM stack and sudo; enrolment
	_ "github.com/l2agent/l2agent/checks/patches"   // pending and security updates, reboot required
)
