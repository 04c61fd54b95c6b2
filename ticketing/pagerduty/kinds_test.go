package pagerduty

// The config tests parse whole configs, whose default checks need their
// kinds registered (this came through ticketing importing checks before).
import _ "github.com/l2agent/l2agent/checks/all"
