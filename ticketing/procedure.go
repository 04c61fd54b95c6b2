package ticketing

import "strings"

// SetProcedures sets how the manager finds the standard procedure of a
// check's metric (the agent: the config's runbook_file, else the built-in
// procedure), shown in every ticket body whose rule has no runbook_url.
// It may be called again (a reload); nil shows none.
func (m *Manager) SetProcedures(f func(check, metric string) string) {
	if f == nil {
		m.procedures.Store(nil)
		return
	}
	m.procedures.Store(&f)
}

// procedure is the procedure text inc's ticket shows: none when its rule
// names a runbook, or when there is none for its metric.
func (m *Manager) procedure(inc *Incident) string {
	f := m.procedures.Load()
	if f == nil || inc.RunbookURL != "" || inc.Metric == "" {
		return ""
	}
	return (*f)(inc.Check, inc.Metric)
}

// writeProcedure writes the "Standard procedure" section of a ticket body.
func writeProcedure(b *strings.Builder, text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	b.WriteString("\nStandard procedure (no runbook_url for this rule):\n")
	b.WriteString(strings.TrimRight(text, "\n") + "\n")
}
