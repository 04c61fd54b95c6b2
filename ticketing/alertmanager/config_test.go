package alertmanager

import (
	"strings"
	"testing"
	"time"

	"github.com/l2agent/l2agent/configs"
)

func TestConfigBlock(t *testing.T) {
	good := `ticketing:
  backends:
    - name: fleet
      kind: alertmanager
      timeout: 5s
      alertmanager:
        urls: [http://am1:9093, http://am2:9093]
        labels: {team: infra}
`
	c, err := configs.Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	var o *Options
	for _, b := range c.Ticketing.Backends {
		if b.Name == "fleet" {
			o = b.Options.(*Options)
		}
	}
	if o == nil || len(o.URLs) != 2 || o.ResendInterval.D() != time.Minute || o.Labels["team"] != "infra" {
		t.Fatalf("parsed %+v", o)
	}
	b, err := New("fleet", *o, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Close()

	for bad, want := range map[string]string{
		"urls: []":                   "urls",
		"urls: [ftp://x]":            "http",
		"urls: [http://a, http://a]": "twice",
		"urls: [http://a]\n        resend_interval: 10ms": "resend_interval",
		"urls: [http://a]\n        labels: {tier: x}":     "set by the agent",
		"urls: [http://a]\n        labels: {a-b: x}":      "label name",
		"urls: [http://a]\n        username: u":           "password",
	} {
		y := strings.Replace(good, "urls: [http://am1:9093, http://am2:9093]\n        labels: {team: infra}", bad, 1)
		if _, err := configs.Parse("bad.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want one mentioning %q", bad, err, want)
		}
	}
}
