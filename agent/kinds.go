package agent

// The kinds a config may name: each family's list of units, linked in here
// where the pipeline is composed.
import (
	_ "github.com/l2agent/l2agent/checks/all"    // every check
	_ "github.com/l2agent/l2agent/remediate/all" // every remediation action
	_ "github.com/l2agent/l2agent/ticketing/all" // every ticket backend
)
