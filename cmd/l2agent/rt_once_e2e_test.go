package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/l2agent/l2agent/deploy/testenv"
)

// TestRTCrashAfterComment: the agent is killed (SIGKILL) after RT added a
// comment and before the store recorded it; restarted, it finds the comment
// in the ticket by its marker and does not add it again, then delivers what
// followed it (the escalation). A proxy in front of RT kills the agent when
// RT answers the comment, before the agent can read the answer: no
// failpoint in the binary. The ticket is read back with RT's REST API as
// root, not with the agent's code.
func TestRTCrashAfterComment(t *testing.T) {
	needRoot(t)
	rt := testenv.StartRT(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	mountTmpfs(t, mnt, "8m", "l2agent-once")
	key := diskKey(mnt, "l2agent-once")
	var a *rtAgent
	killed := make(chan struct{})
	viaProxy := rt
	viaProxy.URL = killOnAnswer(t, rt.URL, regexp.MustCompile(`^/REST/2\.0/ticket/\d+/comment$`), func() {
		a.cmd.Process.Kill()
		err := <-a.done // dead before the answer is sent on
		a.done <- err
		close(killed)
	})
	a = startRTAgent(t, rtConfig(t, viaProxy, dir, "^"+mnt+"$"))
	fillTo(t, mnt, 5000) // warn: the ticket is opened (no comment yet)
	tk := oneTicket(t, rt, key, "opened in L2", func(x testenv.RTTicket) bool { return x.Queue == rt.QueueL2 })
	fillTo(t, mnt, 7700) // crit: a comment "Severity warn → crit", then the escalation
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("RT never answered a comment")
	}
	require.Equal(t, 1, countMessages(t, rt, tk.ID, "Severity warn → crit"), "RT has the comment")
	require.Equal(t, rt.QueueL2, rt.Ticket(t, tk.ID).Queue, "the escalation was not sent")

	b := startRTAgent(t, rtConfig(t, rt, dir, "^"+mnt+"$")) // straight to RT
	oneTicket(t, rt, key, "escalated to L3", func(x testenv.RTTicket) bool { return x.Queue == rt.QueueL3 })
	require.Eventually(t, func() bool {
		return strings.Contains(metricsText(t, b.url), `l2agent_ticket_outbox_pending{backend="rt"} 0`)
	}, 60*time.Second, 200*time.Millisecond, "the outbox drains")
	require.Equal(t, 1, countMessages(t, rt, tk.ID, "Severity warn → crit"), "the comment is in the ticket once")
	require.Equal(t, 1, countMessages(t, rt, tk.ID, "l2agent escalated this ticket to L3"), "the escalation note once")
	log, err := os.ReadFile(b.logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "ticket operation already in the ticket", "found by its marker, not sent again")
	for _, m := range rt.Messages(t, tk.ID)[1:] {
		require.Regexp(t, `\n\nl2agent event \d+ \([0-9a-f]{8}\)\n*$`, m.Content, "each comment ends with its marker")
	}
}

// countMessages counts the messages of ticket id that contain s.
func countMessages(t *testing.T, rt testenv.RT, id int, s string) int {
	t.Helper()
	n := 0
	for _, m := range rt.Messages(t, id) {
		if strings.Contains(m.Content, s) {
			n++
		}
	}
	return n
}

// killOnAnswer starts a proxy to rtURL that calls kill once RT has answered
// a POST to a path matching path with a 2xx, before the answer goes back.
func killOnAnswer(t *testing.T, rtURL string, path *regexp.Regexp, kill func()) string {
	t.Helper()
	target, err := url.Parse(rtURL)
	require.NoError(t, err)
	var once sync.Once
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && path.MatchString(resp.Request.URL.Path) && resp.StatusCode/100 == 2 {
			once.Do(kill)
			return errors.New("the agent is dead")
		}
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}
