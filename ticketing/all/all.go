// Package all links in every ticket backend: each registers itself from
// init(). Adding a backend is one unit under ticketing/ and one line here.
package all

import (
	_ "github.com/l2agent/l2agent/ticketing/alertmanager" // Prometheus Alertmanager (fleet mode)
	_ "github.com/l2agent/l2agent/ticketing/file"         // JSON lines in a file
	_ "github.com/l2agent/l2agent/ticketing/jira"         // Jira Cloud and Data Center
	_ "github.com/l2agent/l2agent/ticketing/pagerduty"    // PagerDuty Events API v2
	_ "github.com/l2agent/l2agent/ticketing/rt"           // Request Tracker 5
	_ "github.com/l2agent/l2agent/ticketing/servicenow"   // ServiceNow Table API
	_ "github.com/l2agent/l2agent/ticketing/webhook"      // a generic JSON webhook
)
