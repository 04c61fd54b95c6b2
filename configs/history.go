package configs

import "time"

// History is how long and how many ended incidents the store keeps, how
// many a ticket lists, and the optional rules that use them (off by
// default).
type History struct {
	// Keep: an ended incident is forgotten this long after it ended.
	Keep Duration `yaml:"keep"`
	// MaxPerKey and MaxTotal bound the history: past them, the oldest
	// records (of the key, of the store) are dropped first.
	MaxPerKey int `yaml:"max_per_key"`
	MaxTotal  int `yaml:"max_total"`
	// Shown: how many past incidents a ticket lists, per section (same
	// alert key; same check and metric on other labels).
	Shown int `yaml:"shown"`
	// FixNotHolding: an alert key that an action fixed (verified) Count
	// times within Window is ticketed at once at L3 the Count-th time
	// instead of being fixed silently again. Count 0 (the default): off.
	FixNotHolding Recurrence `yaml:"fix_not_holding"`
	// SkipFailingAction: an action whose last SkipFailingAction runs on
	// this host all failed is not run again; the ticket says so. 0 (the
	// default): off.
	SkipFailingAction int `yaml:"skip_failing_action"`
	// SkipFailingFor: how long after the last of those failures the action
	// stays skipped; then it is tried once more (and skipped again if that
	// run fails too). Default 7d.
	SkipFailingFor Duration `yaml:"skip_failing_for"`
}

func (h *History) applyDefaults() {
	if h.Keep == 0 {
		h.Keep = Duration(180 * 24 * time.Hour)
	}
	if h.MaxPerKey == 0 {
		h.MaxPerKey = 50
	}
	if h.MaxTotal == 0 {
		h.MaxTotal = 2000
	}
	if h.Shown == 0 {
		h.Shown = 3
	}
	if h.SkipFailingFor == 0 {
		h.SkipFailingFor = Duration(7 * 24 * time.Hour)
	}
	if h.FixNotHolding.Window == 0 {
		h.FixNotHolding.Window = Duration(7 * 24 * time.Hour)
	}
}

func (h *History) validate(errf func(path, format string, args ...any)) {
	const p = "ticketing.history."
	if h.MaxPerKey < 1 {
		errf(p+"max_per_key", p+"max_per_key %d: want at least 1", h.MaxPerKey)
	}
	if h.MaxTotal < h.MaxPerKey {
		errf(p+"max_total", p+"max_total %d: want at least max_per_key (%d)", h.MaxTotal, h.MaxPerKey)
	}
	if h.Shown < 1 || h.Shown > 10 {
		errf(p+"shown", p+"shown %d: want 1 to 10 (past incidents a ticket lists per section)", h.Shown)
	}
	if c := h.FixNotHolding.Count; c < 0 || c == 1 {
		errf(p+"fix_not_holding.count", p+"fix_not_holding.count %d: want 0 (off) or at least 2 (fixes within the window, this one included)", c)
	}
	if h.SkipFailingAction < 0 {
		errf(p+"skip_failing_action", p+"skip_failing_action %d: want 0 (off) or at least 1 (failed runs in a row)", h.SkipFailingAction)
	}

}
