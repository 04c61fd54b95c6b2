package mfa

import (
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/fsutil"
)

// A plain `sshd -T` (no -C: no Match block applies) answers from files
// alone: the sshd binary (its defaults), the sshd_config with every file it
// includes, and the host keys it loads. The check reuses its last answer
// while the fingerprint of those files is the same (fsutil.Fingerprint:
// name, size, modification time, mode, inode; each Include glob's matches;
// the entries of /etc/ssh, where host keys appear), and for at most
// sshdReuseMax. The probes with -C run every time: their answer can also
// depend on users and groups, which may come from a directory service.
const sshdReuseMax = 24 * time.Hour

// sshdMemo is the last plain sshd -T, with the fingerprint of what it read.
type sshdMemo struct {
	key      uint64 // the config files, the binary, the command line
	hostKeys uint64 // the files its hostkey lines name
	names    []string
	at       time.Time
	eff      map[string][]string
}

// fingerprintingReader is c.sshdConfigReader adding each file it opens
// (or fails to open) and each Include glob's matches to f.
func (c *mfaCheck) fingerprintingReader(f *fsutil.Fingerprint) sshdConfigReader {
	r := c.sshdConfigReader()
	open, glob := r.open, r.glob
	if open == nil {
		open = func(name string) (io.ReadCloser, error) { return os.Open(name) }
	}
	if glob == nil {
		glob = filepath.Glob
	}
	r.open = func(name string) (io.ReadCloser, error) {
		rc, err := open(name)
		if err != nil {
			f.String(name + "\x00" + err.Error())
			return rc, err
		}
		fl, ok := rc.(*os.File)
		if !ok {
			f.Spoil()
			return rc, nil
		}
		fi, err := fl.Stat()
		if err != nil {
			f.Spoil()
			return rc, nil
		}
		f.Info(name, fi)
		return rc, nil
	}
	r.glob = func(pattern string) ([]string, error) {
		m, err := glob(pattern)
		f.String(pattern + "\x00" + strings.Join(m, "\x00"))
		if err != nil {
			f.Spoil()
		}
		return m, err
	}
	return r
}

// sshdPlain is sshdEffective of the plain connection, reusing the last
// answer while f (what the config reader read) and the rest of what sshd
// reads are unchanged.
func (c *mfaCheck) sshdPlain(ctx context.Context, f *fsutil.Fingerprint) (map[string][]string, error) {
	o := c.opts.SSHD
	f.String(strings.Join(append([]string{o.Binary, o.Config}, o.Args...), "\x00"))
	if !filepath.IsAbs(o.Binary) {
		f.Spoil()
	}
	f.File(c.sshdPath(o.Binary))
	f.File(c.sshdPath(sshdSysconfDir))
	key, ok := f.Sum()
	now := c.now()
	c.mu.Lock()
	memo := c.memo
	c.mu.Unlock()
	if ok && memo != nil && memo.key == key && now.Sub(memo.at) >= 0 && now.Sub(memo.at) < sshdReuseMax {
		if hk, ok := c.hostKeys(memo.names); ok && hk == memo.hostKeys {
			return maps.Clone(memo.eff), nil
		}
	}
	eff, err := c.sshdEffective(ctx, sshdProbe{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memo = nil
	if err != nil || !ok {
		return eff, err
	}
	names := eff["hostkey"]
	if hk, ok := c.hostKeys(names); ok {
		c.memo = &sshdMemo{key: key, hostKeys: hk, names: names, at: now, eff: maps.Clone(eff)}
	}
	return eff, nil
}

// hostKeys fingerprints the host key files names (as sshd -T prints them).
func (c *mfaCheck) hostKeys(names []string) (uint64, bool) {
	f := fsutil.NewFingerprint()
	for _, n := range names {
		if !filepath.IsAbs(n) {
			return 0, false
		}
		f.File(c.sshdPath(n))
	}
	return f.Sum()
}
