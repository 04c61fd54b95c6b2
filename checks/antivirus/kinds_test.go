package antivirus_test

// The config tests parse configs over the embedded default, which names
// every check kind, ticket backend and remediation action: link them all in
// as the agent does (agent/kinds.go). An external test package, because the
// agent imports this one.
import _ "github.com/l2agent/l2agent/agent"
