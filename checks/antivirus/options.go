package antivirus

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/l2agent/l2agent/configs"
)

// Engines are the engines the antivirus check knows by name; any
// other EDR/AV is watched through Options.Processes.
var Engines = []string{"clamav", "mdatp"}

// Options configure the antivirus check.
type Options struct {
	// Required makes antivirus a policy of this host: a host without any
	// engine (engine "none") is a finding that files a ticket. Left false,
	// that series keeps its metric and alert state but files no ticket. An
	// engine that is installed (or named in Engines or Processes) and down,
	// stale or finding infected files is a finding either way.
	Required bool `yaml:"required"`
	// Engines to check: clamav, mdatp. Empty: every one that is installed
	// (clamd.conf present; mdatp binary present).
	Engines []string `yaml:"engines"`
	// Timeout bounds each conversation with an engine (clamd socket, mdatp,
	// systemctl). A clamd that does not answer in time is down.
	Timeout   configs.Duration `yaml:"timeout"`
	ClamAV    ClamAVOptions    `yaml:"clamav"`
	MDATP     MDATPOptions     `yaml:"mdatp"`
	Processes []ProcessEngine  `yaml:"processes"`
	// Systemctl runs `systemctl is-active UNIT...` for Processes[].Units.
	Systemctl string `yaml:"systemctl"`
}

// ClamAVOptions configure the ClamAV engine. File paths are read under
// paths.rootfs.
type ClamAVOptions struct {
	ClamdConf string `yaml:"clamd_conf"` // default /etc/clamav/clamd.conf
	// Address overrides clamd.conf's LocalSocket/TCPSocket: a unix socket
	// path, or host:port.
	Address string `yaml:"address"`
	// DatabaseDir overrides clamd.conf's DatabaseDirectory (default
	// /var/lib/clamav); its *.cvd/*.cld headers give the signature age.
	DatabaseDir  string `yaml:"database_dir"`
	FreshclamLog string `yaml:"freshclam_log"` // default /var/log/clamav/freshclam.log
	// ScanLogs are logs of clamscan/clamdscan --log; the newest scan summary
	// in them gives the infected count and the last scan time.
	ScanLogs []string `yaml:"scan_logs"`
	// OnAccessProcess is the process name of on-access scanning.
	OnAccessProcess string `yaml:"on_access_process"` // default clamonacc
}

// MDATPOptions configure Microsoft Defender for Endpoint on Linux.
type MDATPOptions struct {
	Path string `yaml:"path"` // default /usr/bin/mdatp
}

// ProcessEngine is an EDR or antivirus known only by what must be running.
type ProcessEngine struct {
	Name      string   `yaml:"name"`      // the engine label
	Processes []string `yaml:"processes"` // process names (comm or argv[0] base name)
	Units     []string `yaml:"units"`     // systemd units that must be active
}

// WithDefaults returns o with every field left out set to its default.
func (o Options) WithDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	if o.Timeout == 0 {
		o.Timeout = configs.Duration(5 * time.Second)
	}
	def(&o.ClamAV.ClamdConf, "/etc/clamav/clamd.conf")
	def(&o.ClamAV.FreshclamLog, "/var/log/clamav/freshclam.log")
	def(&o.ClamAV.OnAccessProcess, "clamonacc")
	def(&o.MDATP.Path, "/usr/bin/mdatp")
	def(&o.Systemctl, "systemctl")
	o.Engines = slices.Clone(o.Engines)
	o.ClamAV.ScanLogs = slices.Clone(o.ClamAV.ScanLogs)
	o.Processes = slices.Clone(o.Processes)
	return o
}

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) { *o = o.WithDefaults() }

// validate reports bad values; path is the position of the block, e.g.
// "checks[2].antivirus"; errf(path+".field", format, args...) places an error.
func (o *Options) Validate(path string, errf configs.Errorf) {
	seen := map[string]bool{}
	for i, e := range o.Engines {
		p := fmt.Sprintf("%s.engines[%d]", path, i)
		if !slices.Contains(Engines, e) {
			errf(p, "antivirus engine %q: want one of %s (watch other products with processes:)", e, strings.Join(Engines, ", "))
		}
		if seen[e] {
			errf(p, "antivirus engine %q listed twice", e)
		}
		seen[e] = true
	}
	if o.Timeout < 0 {
		errf(path+".timeout", "antivirus timeout must not be negative")
	}
	for _, f := range []struct{ key, v string }{{"clamav.clamd_conf", o.ClamAV.ClamdConf}, {"clamav.freshclam_log", o.ClamAV.FreshclamLog}} {
		if !filepath.IsAbs(f.v) {
			errf(path+"."+f.key, "antivirus %s %q: must be an absolute path", f.key, f.v)
		}
	}
	if d := o.ClamAV.DatabaseDir; d != "" && !filepath.IsAbs(d) {
		errf(path+".clamav.database_dir", "antivirus clamav.database_dir %q: must be an absolute path", d)
	}
	if a := o.ClamAV.Address; a != "" && !filepath.IsAbs(a) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errf(path+".clamav.address", "antivirus clamav.address %q: want a unix socket path or host:port", a)
		}
	}
	for i, l := range o.ClamAV.ScanLogs {
		if !filepath.IsAbs(l) {
			errf(fmt.Sprintf("%s.clamav.scan_logs[%d]", path, i), "antivirus scan log %q: must be an absolute path", l)
		}
	}
	if strings.TrimSpace(o.MDATP.Path) == "" {
		errf(path+".mdatp.path", "antivirus mdatp.path must not be empty")
	}
	for i, pe := range o.Processes {
		p := fmt.Sprintf("%s.processes[%d]", path, i)
		switch {
		case pe.Name == "":
			errf(p, "antivirus processes entry needs a name (the engine label)")
		case slices.Contains(Engines, pe.Name) || pe.Name == "none":
			errf(p+".name", "antivirus processes name %q is reserved", pe.Name)
		case seen[pe.Name]:
			errf(p+".name", "antivirus engine %q defined twice", pe.Name)
		}
		seen[pe.Name] = true
		if len(pe.Processes) == 0 && len(pe.Units) == 0 {
			errf(p, "antivirus engine %q: list processes, units or both", pe.Name)
		}
		for j, n := range pe.Processes {
			if n == "" || strings.Contains(n, "/") {
				errf(fmt.Sprintf("%s.processes[%d]", p, j), "antivirus process name %q: want a program name without a path", n)
			}
		}
		for j, u := range pe.Units {
			if u == "" || strings.ContainsAny(u, " /") {
				errf(fmt.Sprintf("%s.units[%d]", p, j), "antivirus unit %q: want a systemd unit name", u)
			}
		}
	}
}
