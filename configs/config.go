// Package configs holds the l2agent configuration schema, its defaults and
// its validation. The default configuration is embedded from agent.yaml.
package configs

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultYAML is the embedded default configuration, printed by
// `l2agent config default`.
//
//go:embed agent.yaml
var DefaultYAML []byte

// DefaultStateDir is where the agent keeps its state unless told otherwise.
const DefaultStateDir = "/var/lib/l2agent"

// DefaultListenAddress is where the agent serves HTTP unless told otherwise.
// Port 10061: the 9100–9999 exporter range of the Prometheus default port
// allocations is exhausted and no well-known exporter uses 10061.
const DefaultListenAddress = "127.0.0.1:10061"

// Config is the whole agent configuration.
type Config struct {
	Hostname      string      `yaml:"hostname"`
	ListenAddress string      `yaml:"listen_address"`
	API           API         `yaml:"api"`
	StateDir      string      `yaml:"state_dir"`
	Paths         Paths       `yaml:"paths"`
	Log           Log         `yaml:"log"`
	Defaults      Defaults    `yaml:"defaults"`
	Checks        []Check     `yaml:"checks"`
	Ticketing     Ticketing   `yaml:"ticketing"`
	Remediation   Remediation `yaml:"remediation"` // configs/remediation.go
	// RunbookFile names a file of procedures that replace or extend the
	// built-in ones (configs/procedure.go); relative to the config file.
	RunbookFile string `yaml:"runbook_file"`
	// Runbooks are the entries of RunbookFile, read and validated by Load.
	Runbooks []Procedure `yaml:"-"`
}

// DefaultAPIGroup is the group whose members may use the detailed API
// through its socket, besides root: Debian's group for system monitoring
// (members read /var/log), present on every Debian, Ubuntu, RHEL and Alpine.
const DefaultAPIGroup = "adm"

// APISocketName is the socket's name in $RUNTIME_DIRECTORY or the state dir.
const APISocketName = "api.sock"

// API is the local unix socket that serves the detailed API (/api/v1/*,
// /-/reload) to root and the members of Group; over TCP those answer only
// requests authenticated by the web config's basic_auth_users.
type API struct {
	// Socket is the socket's path; empty: api.sock in $RUNTIME_DIRECTORY
	// (the unit's RuntimeDirectory=l2agent, /run/l2agent) when set, else in
	// the state dir.
	Socket string `yaml:"socket"`
	// Group may use the socket besides root (mode 0660, this group); empty:
	// root only.
	Group string `yaml:"group"`
}

// Paths are the roots the agent reads the host through, so that it works in a
// container that mounts the host (like node_exporter's --path.* flags).
type Paths struct {
	Procfs string `yaml:"procfs"`
	Sysfs  string `yaml:"sysfs"`
	Rootfs string `yaml:"rootfs"`
	// Chroot runs the programs the checks start (apt-get, dnf, zypper, apk,
	// sshd -T, mdatp, systemctl) chrooted into Rootfs: the host's own
	// programs, libraries and configuration, not the container's. It needs
	// CAP_SYS_CHROOT; with Rootfs "/" it changes nothing.
	Chroot bool `yaml:"chroot"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // logfmt, json
}

// Defaults apply to every check that does not set its own.
type Defaults struct {
	Schedule  string   `yaml:"schedule"`
	Timeout   Duration `yaml:"timeout"`
	JitterMax Duration `yaml:"jitter_max"`
}

// Check is one scheduled check.
type Check struct {
	Name     string   `yaml:"name"`
	Kind     string   `yaml:"kind"`
	Disabled bool     `yaml:"disabled"`
	Schedule string   `yaml:"schedule"`
	Timeout  Duration `yaml:"timeout"`
	Rules    []Rule   `yaml:"rules"`

	// Options is the kind's own block, written under a key named after the
	// kind (`disk:` for kind disk), of the type its unit registered in
	// CheckKinds; after loading it is never nil for a kind with options.
	Options Options `yaml:"-"`
	blocks  []block // every kind block written, to report those of another kind
}

// block is a kind's options block as written in a config.
type block struct {
	name string
	opts Options
}

func (c *Check) family() *Family { return CheckKinds }
func (c *Check) addBlock(name string, o Options) {
	c.blocks = append(c.blocks, block{name, o})
}

// Rule turns a metric of a check into an alert state.
type Rule struct {
	Metric     string            `yaml:"metric"`
	Labels     map[string]string `yaml:"labels"` // exact match; empty matches all
	Warn       *float64          `yaml:"warn"`
	Crit       *float64          `yaml:"crit"`
	Direction  string            `yaml:"direction"` // above (default) or below
	For        Duration          `yaml:"for"`
	Clear      float64           `yaml:"clear"` // hysteresis, in the metric's unit
	RunbookURL string            `yaml:"runbook_url"`
}

// Above reports whether a breach is a value at or above the threshold.
func (r Rule) Above() bool { return r.Direction != "below" }

// Matches reports whether the rule applies to an observation's labels.
func (r Rule) Matches(labels map[string]string) bool {
	for k, v := range r.Labels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Duration is a time.Duration written as "30s", "5m", "1h30m" or "2d".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return fmt.Errorf("expected a duration such as 30s, 5m or 1h")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ParseDuration accepts Go durations plus a "d" (24h) suffix.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number with a unit such as 30s, 5m, 1h or 2d", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return d, nil
}

// Secret is a credential. It is never written inline in a config: the value
// must be a ${ENV_VAR} reference, expanded when the config is loaded. (Fields
// named *_file hold a path to a file with the secret instead.)
type Secret struct {
	Ref   string // the ${VAR} reference as written
	value string
}

// UnmarshalYAML accepts only ${ENV_VAR}.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if n.Kind != yaml.ScalarNode || !strings.HasPrefix(v, "${") || !strings.HasSuffix(v, "}") || !validEnvName(v[2:len(v)-1]) {
		return fmt.Errorf("secrets are never written inline: use a ${ENV_VAR} reference or the matching *_file key")
	}
	s.Ref = v
	s.value = os.Getenv(v[2 : len(v)-1])
	return nil
}

// MarshalYAML never writes the value.
func (s Secret) MarshalYAML() (any, error) { return s.Ref, nil }

// String hides the value from logs and fmt.
func (s Secret) String() string {
	if s.Ref == "" {
		return ""
	}
	return "<secret " + s.Ref + ">"
}

// Reveal returns the value for use on the wire.
func (s Secret) Reveal() string { return s.value }

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ReadSecretFile reads a *_file secret, trimming one trailing newline.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
