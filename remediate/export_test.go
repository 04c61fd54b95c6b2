package remediate

// What the external tests (package remediate_test) see of the inside.

// KillGrace is how long a command gets between SIGTERM and SIGKILL.
const KillGrace = killGrace

// Ran reports whether a result means the action was applied.
var Ran = ran

// SetAction replaces an action of the engine (its default and in rules).
func (e *Engine) SetAction(name string, a Action) {
	e.actions[name] = a
	for i := range e.rules {
		if e.rules[i].rule.Action == name {
			e.rules[i].action = a
		}
	}
}
