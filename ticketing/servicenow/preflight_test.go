package servicenow

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// TestPreflight: `tickets test` checks every name the config uses against
// the instance, changing nothing: the credentials, the groups and the
// caller, close_code and the states and category against incident's
// choice lists (a value outside them would be stored as it is), and read
// access to sys_journal_field.
func TestPreflight(t *testing.T) {
	ctx := context.Background()
	var p Preflighter
	f, b := newFake(t, oauthClient, Options{AssignmentGroupL2: "Service Desk", AssignmentGroupL3: groupNetwork, CallerID: "l2agent", Category: "software"})
	p = b
	require.NoError(t, p.Preflight(ctx))
	for _, r := range f.Requests() {
		require.Equal(t, http.MethodGet, r.Method, "nothing changed: %s %s", r.Method, r.Path)
	}
	require.Equal(t, []string{"client_credentials"}, f.grants())

	for _, c := range []struct {
		name string
		o    Options
		set  func(f *fakeSN)
		want string
	}{
		{"pre-Utah close code", Options{CloseCode: "Solved (Permanently)"}, nil,
			`close_code "Solved (Permanently)" is not a value of the instance's incident.close_code choice list; the values are: "Duplicate", "Known error", `},
		{"a label for a value", Options{Category: "Inquiry / Help"}, nil,
			`category "Inquiry / Help" is not a value of the instance's incident.category choice list ("Inquiry / Help" is the label of value "inquiry": the config takes the value)`},
		{"a state the instance lacks", Options{ReopenState: 4}, nil, `reopen_state "4" is not a value`},
		{"an unknown group", Options{AssignmentGroupL3: "Netwrok"}, nil, `no record has name "Netwrok"`},
		{"a group sys_id that is not one", Options{AssignmentGroupL4: "0123456789abcdef0123456789abcdef"}, nil,
			"look up assignment_group_l4 0123456789abcdef0123456789abcdef in sys_user_group: no such record"},
		{"an unknown caller", Options{CallerID: "l2agnet"}, nil, `no record has user_name or name "l2agnet"`},
		{"no read access to sys_choice", Options{}, func(f *fakeSN) { f.choices = nil },
			"no choices of incident.close_code could be read from sys_choice"},
		{"no read access to the journal", Options{}, func(f *fakeSN) { f.journalDenied = true },
			"read sys_journal_field (needed to look up operations in doubt): HTTP 403"},
		{"client credentials not enabled", Options{}, func(f *fakeSN) { f.oauth.ccDisabled = true },
			"servicenow credentials: servicenow oauth token (grant client_credentials): HTTP 401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, b := newFake(t, oauthClient, c.o)
			if c.set != nil {
				c.set(f)
			}
			err := b.Preflight(ctx)
			require.ErrorContains(t, err, c.want)
			_, retry, _ := ticketing.Classify(err)
			require.False(t, retry)
		})
	}
}
