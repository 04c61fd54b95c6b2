package jira

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/ticketing"
)

// steps records the steps of a Tester's check, as `tickets test` prints
// them.
type steps []string

func (s *steps) step(what string, err error) bool {
	if err != nil {
		*s = append(*s, fmt.Sprintf("%s: FAILED: %v", what, err))
		return false
	}
	*s = append(*s, what+": ok")
	return true
}

const srvURL = "http://jira"

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	for _, cloud := range []bool{true, false} {
		f, b := newFakeWith(t, fakeConfig{cloud: cloud, edit: func(o *Options) {
			o.PriorityL4, o.ComponentsL2, o.Resolution = "Highest", []string{"Linux"}, "Fixed"
		}})
		var s steps
		require.True(t, b.Preflight(ctx, s.step), "%v", s)
		require.Equal(t, steps{"flavor: ok", "project OPS: ok", "issue type Task: ok", "priorities Medium, High, Highest: ok",
			"components Linux, Platform: ok", "resolution Fixed: ok"}, s)
		for _, r := range f.Requests() {
			require.Equal(t, "GET", r.Method, "reads only: %s", r.Path)
		}
	}

	for name, tc := range map[string]struct {
		c    fakeConfig
		last string
	}{
		"flavor":     {fakeConfig{cloud: true, flavor: FlavorDataCenter}, "flavor: FAILED: flavor is datacenter but"},
		"api":        {fakeConfig{cloud: false, apiVersion: 3}, "flavor: FAILED: " + srvURL + " is Jira Data Center: api_version 3: Jira Data Center has no REST API v3"},
		"project":    {fakeConfig{cloud: true, edit: func(o *Options) { o.Project = "NOPE" }}, "project NOPE: FAILED"},
		"issue type": {fakeConfig{cloud: false, edit: func(o *Options) { o.IssueType = "Incident" }}, `issue type Incident: FAILED: no issue type "Incident" in Jira; there are "Task", "Bug"`},
		"priority":   {fakeConfig{cloud: true, edit: func(o *Options) { o.PriorityL3 = "P1" }}, `priorities Medium, P1: FAILED: no priority "P1"`},
		"component":  {fakeConfig{cloud: false, edit: func(o *Options) { o.ComponentsL4 = []string{"Storage"} }}, `components Platform, Storage: FAILED: no component "Storage"`},
		"resolution": {fakeConfig{cloud: true, edit: func(o *Options) { o.Resolution = "Solved" }}, `resolution Solved: FAILED: no resolution "Solved"`},
	} {
		_, b := newFakeWith(t, tc.c)
		var s steps
		require.False(t, b.Preflight(ctx, s.step), name)
		require.Contains(t, strings.Replace(s[len(s)-1], b.base, srvURL, 1), tc.last, name)
	}
}

func TestCheckTicket(t *testing.T) {
	ctx := context.Background()
	f, b := newFakeWith(t, fakeConfig{cloud: true, edit: func(o *Options) { o.Resolution = "Fixed" }})
	f.screens["31"] = []string{"resolution"}
	ref, err := b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	f.Take()
	var s steps
	require.True(t, b.CheckTicket(ctx, ref, s.step))
	require.Equal(t, steps{`transition_resolve "Done" from "To Do": ok`, `transition_escalate "escalate" from "To Do": ok`}, s)
	require.NoError(t, b.Resolve(ctx, ref, "done"))
	s = nil
	require.True(t, b.CheckTicket(ctx, ref, s.step))
	require.Equal(t, steps{`transition_reopen "To Do" from "Done": ok`}, s)
	for _, r := range f.Requests() {
		if r.Method != "GET" {
			require.Contains(t, []string{"/rest/api/3/issue/OPS-1/transitions", "/rest/api/3/issue/OPS-1/comment"}, r.Path, "only Resolve changed the issue")
		}
	}

	f.screens = map[string][]string{}
	ref2, err := b.Open(ctx, ticketing.Ticket{Key: testKey + "2", Title: "t", Body: "b"})
	require.NoError(t, err)
	s = nil
	require.False(t, b.CheckTicket(ctx, ref2, s.step))
	require.Contains(t, s[0], "its screen has no Resolution field")

	_, b = newFakeWith(t, fakeConfig{cloud: false, edit: func(o *Options) { o.TransitionEscalate = "To L3" }})
	ref, err = b.Open(ctx, ticketing.Ticket{Key: testKey, Title: "t", Body: "b"})
	require.NoError(t, err)
	s = nil
	require.False(t, b.CheckTicket(ctx, ref, s.step))
	require.Equal(t, `transition_escalate "To L3" from "To Do": FAILED: OPS-1 in status "To Do" offers no transition "To L3"; it offers "In Progress", "Done", "Escalate"`, s[1])
}
