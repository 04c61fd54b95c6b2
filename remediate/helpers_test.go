package remediate

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/l2agent/l2agent/checks" // registers the check kinds the default config names
	"github.com/l2agent/l2agent/configs"
	_ "github.com/l2agent/l2agent/ticketing/all" // and its ticket backend
)

// parseRemediation parses a remediation: block with the config loader, so
// that defaults and validation are the real ones.
func parseRemediation(t *testing.T, yaml string) configs.Remediation {
	t.Helper()
	cfg, err := configs.Parse("test.yaml", []byte(yaml))
	require.NoError(t, err)
	return cfg.Remediation
}

// fakeAction is an action whose behaviour the test sets.
type fakeAction struct {
	name     string
	mu       sync.Mutex
	plans    int
	applies  int
	applyErr error
	hang     bool // Apply blocks until ctx ends
}

func (f *fakeAction) Name() string { return f.name }

func (f *fakeAction) Plan(ctx context.Context, a Alert) (Plan, error) {
	f.mu.Lock()
	f.plans++
	f.mu.Unlock()
	return Plan{Action: f.name, Text: "would fix " + a.Key}, nil
}

func (f *fakeAction) Apply(ctx context.Context, p Plan) (Outcome, error) {
	f.mu.Lock()
	f.applies++
	f.mu.Unlock()
	if f.hang {
		<-ctx.Done()
		return Outcome{Result: "interrupted"}, ctx.Err()
	}
	if f.applyErr != nil {
		return Outcome{Result: "broke"}, f.applyErr
	}
	return Outcome{Success: true, Result: "fixed", Output: "all good", FreedBytes: 100}, nil
}

func (f *fakeAction) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans, f.applies
}

// setAction replaces an action of the engine (its default and in rules).
func (e *Engine) setAction(name string, a Action) {
	e.actions[name] = a
	for i := range e.rules {
		if e.rules[i].rule.Action == name {
			e.rules[i].action = a
		}
	}
}
