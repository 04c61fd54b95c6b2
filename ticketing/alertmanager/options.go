package alertmanager

import (
	"sort"
	"strconv"
	"time"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure the alertmanager backend (fleet mode): the
// agent posts its alerts to Prometheus Alertmanager (POST /api/v2/alerts)
// instead of filing tickets, and Alertmanager groups, deduplicates, routes
// and notifies. The backend's timeout bounds each POST.
type Options struct {
	// URLs are the base URLs of every Alertmanager of the cluster, e.g.
	// http://am1:9093; each alert goes to all of them, as Prometheus does.
	URLs []string `yaml:"urls"`
	// ResendInterval is how often the firing alerts are sent again so
	// that Alertmanager keeps them active (default 1m). Each alert carries
	// endsAt = now + 4 × resend_interval, so it resolves by itself if the
	// agent stops.
	ResendInterval configs.Duration `yaml:"resend_interval"`
	// Labels are static labels added to every alert (e.g. team, env).
	Labels map[string]string `yaml:"labels"`
	// Basic auth, optional: username with password (${ENV_VAR}) or password_file.
	Username     string         `yaml:"username"`
	Password     configs.Secret `yaml:"password"`
	PasswordFile string         `yaml:"password_file"`
}

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	if o.ResendInterval == 0 {
		o.ResendInterval = configs.Duration(time.Minute)
	}
}

// validate reports bad values; path is the position of the block.
func (o *Options) Validate(path string, errf configs.Errorf) {
	if len(o.URLs) == 0 {
		errf(path+".urls", "%s.urls: list at least one Alertmanager URL", path)
	}
	seen := map[string]bool{}
	for i, u := range o.URLs {
		p := path + ".urls[" + strconv.Itoa(i) + "]"
		configs.CheckURL(errf, p, u)
		if seen[u] {
			errf(p, "%s %q: listed twice", p, u)
		}
		seen[u] = true
	}
	if o.ResendInterval < configs.Duration(time.Second) {
		errf(path+".resend_interval", "%s.resend_interval %s: want at least 1s", path, time.Duration(o.ResendInterval))
	}
	keys := make([]string, 0, len(o.Labels))
	for k := range o.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !amLabelName(k) {
			errf(path+".labels."+k, "%s.labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", path, k)
		}
		switch k {
		case "alertname", "host", "check", "metric", "severity", "tier":
			errf(path+".labels."+k, "%s.labels: %q is set by the agent", path, k)
		}
	}
	basic := o.Username != "" || o.Password.Ref != "" || o.PasswordFile != ""
	if basic {
		configs.OneSecret(errf, path, "password", o.Password, o.PasswordFile)
		if o.Username == "" {
			errf(path+".username", "%s: password needs username (basic auth)", path)
		}
	}
}

// amLabelName reports whether s is a Prometheus label name.
func amLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

func init() {
	ticketing.Register("alertmanager", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
