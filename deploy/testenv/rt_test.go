package testenv

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestRTStopStart starts a real Request Tracker, files a ticket with the
// agent's token, stops RT (an outage: connections are refused), starts it
// again and finds the same ticket: what the outage tests rely on.
func TestRTStopStart(t *testing.T) {
	r := StartRT(t)
	body, _ := json.Marshal(map[string]any{
		"Queue": r.QueueL2, "Subject": "testenv", "Content": "≥ 90%", "ContentType": "text/plain",
		"CustomFields": map[string]string{r.CustomField: `k{a="b"}`},
	})
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/REST/2.0/ticket", bytes.NewReader(body))
		req.Header.Set("Authorization", "token "+r.Token)
		req.Header.Set("Content-Type", "application/json")
		return (&http.Client{Timeout: 10 * time.Second}).Do(req)
	}
	resp, err := post()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: HTTP %d", resp.StatusCode)
	}

	got := r.TicketsWithCF(t, r.CustomField, `k{a="b"}`)
	if len(got) != 1 || got[0].Queue != r.QueueL2 || got[0].Subject != "testenv" || got[0].Owner != "Nobody" {
		t.Fatalf("tickets = %+v, want one in %s", got, r.QueueL2)
	}
	msgs := r.Messages(t, got[0].ID)
	if len(msgs) != 1 || msgs[0].Type != "Create" || msgs[0].Content != "≥ 90%" {
		t.Fatalf("messages = %+v, want the create with its content", msgs)
	}

	r.Stop(t)
	if resp, err := post(); err == nil {
		resp.Body.Close()
		t.Fatalf("RT answered HTTP %d after Stop", resp.StatusCode)
	}
	start := time.Now()
	r.Start(t)
	t.Logf("restarted in %s", time.Since(start).Round(time.Millisecond))
	if got := r.Tickets(t, "Queue = '"+r.QueueL2+"'"); len(got) != 1 {
		t.Fatalf("after restart: tickets = %+v, want the one from before", got)
	}
}
