package helper

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/remediate/diskcleanup"
)

// ErrNoLandlock: the kernel has no Landlock (or it is off), or the
// process cannot restrict all its threads (a cgo build).
var ErrNoLandlock = errors.New("landlock unavailable")

// WritePaths are the paths action may write under, from its settings and
// params; full is true for an action that cannot be confined to a few
// paths (security_updates: the package manager writes all over /usr, /etc
// and /var and runs maintainer scripts). An action not listed gets none.
func WritePaths(action string, s configs.Options, p configs.Params) (paths []string, full bool) {
	switch action {
	case "disk_cleanup":
		if dp, ok := p.(*diskcleanup.Params); ok && dp != nil && len(dp.Paths) > 0 {
			return dp.Paths, false
		}
		if ds, ok := s.(*diskcleanup.Settings); ok {
			return ds.AllowPaths, false
		}
	case "journal_vacuum":
		return []string{"/var/log/journal", "/run/log/journal"}, false
	case "logrotate":
		return []string{"/var/log", "/var/lib/logrotate"}, false
	case "package_cache_clean":
		// The caches, and the lock files apt-get clean takes.
		return []string{"/var/cache/apt", "/var/cache/dnf", "/var/cache/yum", "/var/cache/zypp", "/var/cache/apk",
			"/var/lib/apt/lists", "/var/lib/dpkg"}, false
	case "antivirus_update":
		return []string{"/var/lib/clamav", "/var/log/clamav"}, false
	case "service_restart":
		return nil, false // systemd restarts the unit: one D-Bus call, no file written
	case "security_updates":
		return nil, true
	}
	return nil, false
}

// Write rights by Landlock ABI version: what RestrictWrites takes away
// outside the allowed paths. Reading and executing stay allowed.
const (
	fsWriteV1 = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fsFileRights = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE
)

// LandlockABI is the kernel's Landlock ABI version, or an error wrapping
// ErrNoLandlock.
func LandlockABI() (int, error) {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0, fmt.Errorf("%w: %v", ErrNoLandlock, errno)
	}
	return int(abi), nil
}

// RestrictWrites confines the whole process (every thread, and what it
// executes later) so that it may create, write, truncate, rename or
// delete files only beneath paths (missing ones are skipped). It sets
// no_new_privs. It cannot be undone. It returns the ABI version used.
func RestrictWrites(paths []string) (int, error) {
	abi, err := LandlockABI()
	if err != nil {
		return 0, err
	}
	handled := uint64(fsWriteV1)
	if abi >= 2 {
		handled |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		handled |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	attr := unix.LandlockRulesetAttr{Access_fs: handled}
	rfd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), 8, 0)
	if errno != 0 {
		return abi, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(rfd))
	for _, p := range paths {
		if err := addPath(int(rfd), p, handled); err != nil {
			return abi, err
		}
	}
	// On every thread of the process: Go runs goroutines on several, and
	// a restriction of one thread only would not hold.
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno != 0 {
		if errno == syscall.ENOTSUP {
			return abi, fmt.Errorf("%w: cannot restrict every thread (built with cgo)", ErrNoLandlock)
		}
		return abi, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", errno)
	}
	if _, _, errno := syscall.AllThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, rfd, 0, 0); errno != 0 {
		return abi, fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return abi, nil
}

// addPath allows the handled rights beneath p (a file: the file rights).
func addPath(rfd int, p string, handled uint64) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("landlock: open %s: %w", p, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("landlock: stat %s: %w", p, err)
	}
	allowed := handled
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		allowed &= fsFileRights
	}
	rule := unix.LandlockPathBeneathAttr{Allowed_access: allowed, Parent_fd: int32(fd)}
	if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rfd), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_add_rule %s: %w", p, errno)
	}
	return nil
}
