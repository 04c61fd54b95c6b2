package antivirus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/l2agent/l2agent/internal/textfmt"
)

// Microsoft Defender for Endpoint on Linux: `mdatp health --output json`.
// Microsoft documents the fields of `mdatp health` ("Investigate agent
// health issues"); in JSON they are camelCase (healthy, healthIssues,
// licensed, engineVersion, definitionsVersion, definitionsStatus,
// definitionsUpdated, definitionsUpdatedMinutesAgo,
// realTimeProtectionEnabled, realTimeProtectionAvailable,
// engineLoadStatus) and settings are objects such as
// {"value": true, "isManaged": false}.

func (c *antivirusCheck) collectMDATP(ctx context.Context) avResult {
	r := avResult{Engine: "mdatp"}
	argv := []string{c.opts.MDATP.Path, "health", "--output", "json"}
	out, err := c.command(ctx, argv...)
	if err == nil && out.Exit != 0 {
		err = out.ExitError(argv)
	}
	if err != nil {
		r.UpDetails = fmt.Sprintf("mdatp health failed (is the mdatp service running?): %v", err)
		return r
	}
	h, err := parseMDATPHealth(out.Stdout)
	if err != nil {
		r.UpDetails = fmt.Sprintf("mdatp health: %v", err)
		return r
	}
	r.Up = h.Healthy && !h.EngineNotLoaded
	var b strings.Builder
	if r.Up {
		b.WriteString("Defender reports healthy.")
	} else {
		b.WriteString("Defender reports UNHEALTHY.")
	}
	if h.EngineLoadStatus != "" {
		fmt.Fprintf(&b, " Engine: %s.", textfmt.Sanitize(h.EngineLoadStatus))
	}
	if h.Licensed != nil && !*h.Licensed {
		b.WriteString(" Not licensed (device not onboarded).")
	}
	for _, i := range h.HealthIssues {
		fmt.Fprintf(&b, "\n  health issue: %s", textfmt.Sanitize(i))
	}
	r.UpDetails = b.String()
	r.Version, r.SignatureVersion = h.AppVersion, h.DefinitionsVersion
	now := c.now()
	switch {
	case !h.DefinitionsUpdated.IsZero():
		r.SignatureTime = h.DefinitionsUpdated
	case h.DefinitionsMinutesAgo != nil:
		r.SignatureTime = now.Add(-time.Duration(*h.DefinitionsMinutesAgo * float64(time.Minute)))
	}
	if !r.SignatureTime.IsZero() {
		r.SignatureDetails = fmt.Sprintf("Definitions %s, status %s, updated %s.", textfmt.Sanitize(h.DefinitionsVersion),
			textfmt.Sanitize(h.DefinitionsStatus), r.SignatureTime.UTC().Format(time.RFC3339))
	}
	if h.RealTime != nil {
		rt := *h.RealTime && (h.RealTimeAvailable == nil || *h.RealTimeAvailable)
		r.Realtime = &rt
		switch {
		case rt:
			r.RealtimeDetails = "Real-time protection is enabled."
		case !*h.RealTime:
			r.RealtimeDetails = "Real-time protection is DISABLED (real_time_protection_enabled false)."
		default:
			r.RealtimeDetails = "Real-time protection is enabled but not available (real_time_protection_available false)."
		}
	}
	return r
}

// mdatpHealth is what the check reads of `mdatp health --output json`.
type mdatpHealth struct {
	Healthy               bool
	HealthIssues          []string
	Licensed              *bool
	AppVersion            string
	EngineVersion         string
	EngineLoadStatus      string
	EngineNotLoaded       bool
	DefinitionsVersion    string
	DefinitionsStatus     string // upToDate, updating, unavailable, …
	DefinitionsUpdated    time.Time
	DefinitionsMinutesAgo *float64
	RealTime              *bool
	RealTimeAvailable     *bool
}

// parseMDATPHealth parses the JSON health report. Fields may be plain
// values or {"value": …} objects; times are milliseconds since the epoch,
// as a string or a number.
func parseMDATPHealth(b []byte) (mdatpHealth, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return mdatpHealth{}, fmt.Errorf("not JSON: %w", err)
	}
	var h mdatpHealth
	healthy, ok := jsonBool(raw["healthy"])
	if !ok {
		return mdatpHealth{}, errors.New("no \"healthy\" field")
	}
	h.Healthy = healthy
	if v, ok := jsonBool(raw["licensed"]); ok {
		h.Licensed = &v
	}
	if v, ok := jsonBool(raw["realTimeProtectionEnabled"]); ok {
		h.RealTime = &v
	}
	if v, ok := jsonBool(raw["realTimeProtectionAvailable"]); ok {
		h.RealTimeAvailable = &v
	}
	h.AppVersion = jsonString(raw["appVersion"])
	h.EngineVersion = jsonString(raw["engineVersion"])
	h.DefinitionsVersion = jsonString(raw["definitionsVersion"])
	h.DefinitionsStatus = jsonString(raw["definitionsStatus"])
	h.EngineLoadStatus = jsonString(raw["engineLoadStatus"])
	h.EngineNotLoaded = strings.Contains(strings.ToLower(h.EngineLoadStatus), "not loaded")
	if ms, ok := jsonNumber(raw["definitionsUpdated"]); ok && ms > 0 && ms < 1e15 {
		h.DefinitionsUpdated = time.UnixMilli(int64(ms))
	}
	if m, ok := jsonNumber(raw["definitionsUpdatedMinutesAgo"]); ok && m >= 0 && m < 1e9 {
		h.DefinitionsMinutesAgo = &m
	}
	var issues []json.RawMessage
	if json.Unmarshal(raw["healthIssues"], &issues) == nil {
		for _, i := range issues {
			if s := jsonString(i); s != "" {
				h.HealthIssues = append(h.HealthIssues, s)
			} else {
				h.HealthIssues = append(h.HealthIssues, string(i))
			}
		}
	}
	return h, nil
}

// jsonValue unwraps a {"value": x} setting object; other values pass.
func jsonValue(m json.RawMessage) json.RawMessage {
	var obj struct {
		Value json.RawMessage `json:"value"`
	}
	if len(m) > 0 && m[0] == '{' && json.Unmarshal(m, &obj) == nil && obj.Value != nil {
		return obj.Value
	}
	return m
}

func jsonBool(m json.RawMessage) (bool, bool) {
	var b bool
	if err := json.Unmarshal(jsonValue(m), &b); err != nil {
		return false, false
	}
	return b, true
}

// jsonString returns a string value, a {"value": s} setting or the $type
// of an object such as definitionsStatus {"$type": "upToDate"}.
func jsonString(m json.RawMessage) string {
	var s string
	if json.Unmarshal(jsonValue(m), &s) == nil {
		return s
	}
	var typed struct {
		Type string `json:"$type"`
	}
	if json.Unmarshal(m, &typed) == nil {
		return typed.Type
	}
	return ""
}

func jsonNumber(m json.RawMessage) (float64, bool) {
	m = jsonValue(m)
	var f float64
	if json.Unmarshal(m, &f) == nil {
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	var s string
	if json.Unmarshal(m, &s) == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	return 0, false
}
