package pagerduty

import (
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/l2agent/l2agent/configs"
	"github.com/l2agent/l2agent/ticketing"
)

// Options configure the pagerduty ticket backend (Events API v2).
type Options struct {
	// URL of the Events API v2 enqueue endpoint; EU accounts use
	// https://events.eu.pagerduty.com/v2/enqueue.
	URL string `yaml:"url"`
	// RoutingKey is the integration key of the L2 service; the L3 and L4
	// keys are optional (escalation falls back to the tier below).
	RoutingKey       configs.Secret `yaml:"routing_key"`
	RoutingKeyFile   string         `yaml:"routing_key_file"`
	RoutingKeyL3     configs.Secret `yaml:"routing_key_l3"`
	RoutingKeyL3File string         `yaml:"routing_key_l3_file"`
	RoutingKeyL4     configs.Secret `yaml:"routing_key_l4"`
	RoutingKeyL4File string         `yaml:"routing_key_l4_file"`
	// Severity maps l2agent severities (warn, crit) to PagerDuty's
	// (critical, error, warning, info).
	Severity map[string]string `yaml:"severity"`
	// Escalation: "retrigger" (re-trigger at critical on the next tier's
	// routing key) or "policy" (do nothing: PagerDuty's escalation policy acts).
	Escalation string `yaml:"escalation"`
	// Comments are sent (default true); false drops comments.
	Comments *bool `yaml:"comments"`
	// CommentAs is how a comment is sent: "change" (default), a change
	// event on the service of the ticket's tier, which never pages; or
	// "trigger", the alert triggered again with the comment in
	// custom_details, which opens (and pages) a new incident when a
	// responder has resolved the old one.
	CommentAs string `yaml:"comment_as"`
	// ChangeURL is the Change Events endpoint; default: url with
	// /v2/enqueue replaced by /v2/change/enqueue.
	ChangeURL string `yaml:"change_url"`
	// Class is payload.class of every event.
	Class string `yaml:"class"`
}

// PagerDutySeverities are the values PagerDuty accepts in payload.severity.
var PagerDutySeverities = []string{"critical", "error", "warning", "info"}

// ApplyDefaults implements configs.Options: it fills what the config left out.
func (o *Options) ApplyDefaults(string) {
	if o.URL == "" {
		o.URL = "https://events.pagerduty.com/v2/enqueue"
	}
	if o.Severity == nil {
		o.Severity = map[string]string{}
	}
	for k, v := range map[string]string{"warn": "warning", "crit": "critical"} {
		if o.Severity[k] == "" {
			o.Severity[k] = v
		}
	}
	if o.Escalation == "" {
		o.Escalation = "retrigger"
	}
	if o.Comments == nil {
		yes := true
		o.Comments = &yes
	}
	if o.Class == "" {
		o.Class = "l2agent"
	}
	if o.CommentAs == "" {
		o.CommentAs = CommentAsChange
	}
	if o.ChangeURL == "" {
		o.ChangeURL = ChangeURL(o.URL)
	}
}

// The ways a comment is sent (comment_as).
const (
	CommentAsChange  = "change"
	CommentAsTrigger = "trigger"
)

// ChangeURL is the Change Events endpoint next to the events endpoint
// enqueue: https://events.pagerduty.com/v2/enqueue →
// https://events.pagerduty.com/v2/change/enqueue.
func ChangeURL(enqueue string) string {
	if base, ok := strings.CutSuffix(strings.TrimRight(enqueue, "/"), "/v2/enqueue"); ok {
		return base + "/v2/change/enqueue"
	}
	if u, err := url.Parse(enqueue); err == nil && u.Host != "" {
		return u.Scheme + "://" + u.Host + "/v2/change/enqueue"
	}
	return enqueue
}

// validate reports bad values; path is the position of the block, e.g.
// "ticketing.backends[1].pagerduty"; errf(path+".field", format, args...) places an error.
func (o *Options) Validate(path string, errf configs.Errorf) {
	configs.CheckURL(errf, path+".url", o.URL)
	configs.OneSecret(errf, path, "routing_key", o.RoutingKey, o.RoutingKeyFile)
	for _, k := range []struct {
		name string
		s    configs.Secret
		file string
	}{{"routing_key_l3", o.RoutingKeyL3, o.RoutingKeyL3File}, {"routing_key_l4", o.RoutingKeyL4, o.RoutingKeyL4File}} {
		if k.s.Ref != "" || k.file != "" { // optional, but not both forms
			configs.OneSecret(errf, path, k.name, k.s, k.file)
		}
	}
	configs.CheckURL(errf, path+".change_url", o.ChangeURL)
	if o.CommentAs != CommentAsChange && o.CommentAs != CommentAsTrigger {
		errf(path+".comment_as", "%s.comment_as %q: want change or trigger", path, o.CommentAs)
	}
	if o.Escalation != "retrigger" && o.Escalation != "policy" {
		errf(path+".escalation", "%s.escalation %q: want retrigger or policy", path, o.Escalation)
	}
	keys := make([]string, 0, len(o.Severity))
	for k := range o.Severity {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "warn" && k != "crit" {
			errf(path+".severity."+k, "%s.severity: unknown l2agent severity %q (want warn or crit)", path, k)
		}
		if !slices.Contains(PagerDutySeverities, o.Severity[k]) {
			errf(path+".severity."+k, "%s.severity.%s %q: want one of %s", path, k, o.Severity[k], strings.Join(PagerDutySeverities, ", "))
		}
	}
}

func init() {
	ticketing.Register("pagerduty", func(b configs.Backend) (ticketing.Ticketer, error) {
		return New(b.Name, *b.Options.(*Options), b.Timeout.D())
	}, func() configs.Options { return &Options{} })
}
