package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RTScript is the script that installs and runs Request Tracker, relative
// to the module root.
const RTScript = "deploy/testenv/rt.sh"

// RT is a real Request Tracker 5 started for one test by StartRT: its own
// SQLite database, fresh from the fixtures, on its own port on 127.0.0.1.
type RT struct {
	URL         string // web root, http://127.0.0.1:PORT; REST 2.0 is URL + "/REST/2.0"
	Token       string // auth token of user l2agent, who has just the agent's rights
	AdminToken  string // root's token, for the test's own queries
	QueueL2     string // HostChecks
	QueueL3     string // HostChecks-L3
	CustomField string // HostCheckKey: ticket CF, freeform, one value, on both queues
	L3Owner     string // l3engineer: may own tickets in both queues
	StateDir    string // the instance's dir: database, config, rt-server.log
	LogPath     string

	port   string
	script string
}

var (
	rtPrepareOnce sync.Once
	rtScript      string
	rtPrepareErr  error
)

// rtTimeout bounds rt.sh: a first run installs ~270 Debian packages.
var rtTimeout = 20 * time.Minute

// StartRT starts a Request Tracker for this test and stops and deletes it
// when the test ends. The first call in a process runs `rt.sh --prepare`
// (install the packages if needed, make the fixtures database once per
// machine); then every call starts a new instance from a copy of the
// fixtures (about 3 s), so each test sees only its own tickets and may stop
// and start its RT (Stop, Start) without disturbing tests running in
// parallel in other packages.
//
// When RT cannot be installed or started (not root, not Debian, no network
// for apt) the test fails if InCI and is skipped otherwise.
func StartRT(t testing.TB) RT {
	t.Helper()
	rtPrepareOnce.Do(func() { rtScript, rtPrepareErr = prepareRT() })
	if rtPrepareErr != nil {
		rtUnavailable(t, rtPrepareErr)
	}
	var (
		r   RT
		err error
	)
	start := time.Now()
	// The port from FreePort can be taken before RT binds it: try another.
	for attempt := 0; attempt < 3; attempt++ {
		r, err = startRTInstance(rtScript, strconv.Itoa(FreePort(t)))
		if err == nil || !strings.Contains(err.Error(), "something else answers") {
			break
		}
	}
	if err != nil {
		rtUnavailable(t, err)
	}
	t.Logf("testenv: Request Tracker at %s ready after %s (dir %s)", r.URL, time.Since(start).Round(time.Millisecond), r.StateDir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: end of %s:\n%s", r.LogPath, tail(r.LogPath, 40))
		}
		if _, err := r.run("--remove"); err != nil {
			t.Errorf("testenv: removing RT instance %s: %v", r.StateDir, err)
		}
	})
	return r
}

func rtUnavailable(t testing.TB, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("testenv: Request Tracker: %v (CI=true, so this fails instead of skipping)", err)
	}
	t.Skipf("testenv: Request Tracker: %v; run as root: %s", err, RTScript)
}

func prepareRT() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, RTScript)
	if _, err := os.Stat(script); err != nil {
		return "", err
	}
	if os.Geteuid() != 0 {
		return "", errors.New("rt.sh must run as root (it installs Debian packages and runs RT as www-data)")
	}
	if _, err := lookBin("apt-get"); err != nil {
		if _, err2 := os.Stat("/usr/share/request-tracker5/libexec/rt-server"); err2 != nil {
			return "", fmt.Errorf("not installed, and no apt-get to install it: %w", err)
		}
	}
	_, err = runRT(script, nil, "--prepare")
	return script, err
}

func startRTInstance(script, port string) (RT, error) {
	env, err := runRT(script, []string{"RT_PORT=" + port, "RT_OWNER_PID=" + strconv.Itoa(os.Getpid())}, "--instance")
	if err != nil {
		return RT{}, err
	}
	r := RT{
		URL:         env["RT_URL"],
		Token:       env["RT_TOKEN"],
		AdminToken:  env["RT_ADMIN_TOKEN"],
		QueueL2:     env["RT_QUEUE_L2"],
		QueueL3:     env["RT_QUEUE_L3"],
		CustomField: env["RT_CUSTOM_FIELD"],
		L3Owner:     env["RT_L3_OWNER"],
		StateDir:    env["RT_STATE_DIR"],
		LogPath:     env["RT_LOG"],
		port:        port,
		script:      script,
	}
	if r.URL == "" || r.Token == "" || r.AdminToken == "" || r.StateDir == "" {
		return RT{}, fmt.Errorf("%s --instance printed an incomplete environment: %v", script, env)
	}
	return r, nil
}

// runRT runs rt.sh with extra environment and returns the `export K=V`
// lines it printed.
func runRT(script string, env []string, args ...string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", script, strings.Join(args, " "), err, lastLines(stderr.String(), 30))
	}
	out := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			out[k] = v
		}
	}
	return out, nil
}

func (r RT) run(args ...string) (map[string]string, error) {
	return runRT(r.script, []string{"RT_STATE_DIR=" + r.StateDir, "RT_PORT=" + r.port}, args...)
}

// Stop stops this RT (an outage); its database stays for Start.
func (r RT) Stop(t testing.TB) {
	t.Helper()
	if _, err := r.run("--stop"); err != nil {
		t.Fatalf("testenv: stopping RT: %v", err)
	}
}

// Start starts this RT again after Stop, on the same port and database.
func (r RT) Start(t testing.TB) {
	t.Helper()
	if _, err := r.run(); err != nil {
		t.Fatalf("testenv: starting RT again: %v", err)
	}
}

// RTTicket is a ticket as the tests see it.
type RTTicket struct {
	ID       int
	Subject  string
	Queue    string // name
	Status   string
	Priority int
	Owner    string              // user name; "Nobody" when unowned
	CF       map[string][]string // custom field name → values
}

// RTMessage is the text of one transaction: the ticket's creation, a
// comment or a reply.
type RTMessage struct {
	TransactionID int
	Type          string // Create, Comment, Correspond
	ContentType   string
	Content       string
}

// Tickets runs a TicketSQL query as root and returns every ticket it finds
// (all statuses unless the query says otherwise), oldest first.
func (r RT) Tickets(t testing.TB, ticketSQL string) []RTTicket {
	t.Helper()
	var out []RTTicket
	for page := 1; ; page++ {
		var res struct {
			Items []rtTicketJSON `json:"items"`
			Pages float64        `json:"pages"` // RT writes 0.0 for no result
		}
		r.get(t, "/tickets", url.Values{
			"query":         {ticketSQL},
			"orderby":       {"id"},
			"order":         {"ASC"},
			"per_page":      {"100"},
			"page":          {strconv.Itoa(page)},
			"fields":        {"Subject,Queue,Status,Priority,Owner,CustomFields"},
			"fields[Queue]": {"Name"},
		}, &res)
		for _, it := range res.Items {
			out = append(out, it.ticket())
		}
		if float64(page) >= res.Pages {
			return out
		}
	}
}

// Ticket returns ticket id.
func (r RT) Ticket(t testing.TB, id int) RTTicket {
	t.Helper()
	var it rtTicketJSON
	r.get(t, "/ticket/"+strconv.Itoa(id), url.Values{"fields[Queue]": {"Name"}}, &it)
	return it.ticket()
}

// TicketsWithCF returns the tickets whose custom field name is exactly
// value, in any status (TicketSQL compares without regard to case; this
// does not).
func (r RT) TicketsWithCF(t testing.TB, name, value string) []RTTicket {
	t.Helper()
	q := "CF.{" + name + "} = '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
	var out []RTTicket
	for _, tk := range r.Tickets(t, q) {
		for _, v := range tk.CF[name] {
			if v == value {
				out = append(out, tk)
				break
			}
		}
	}
	return out
}

// Messages returns the texts of ticket id's transactions, oldest first,
// however many pages they take.
func (r RT) Messages(t testing.TB, id int) []RTMessage {
	t.Helper()
	types := map[string]string{}
	for page := 1; ; page++ {
		// Items have both "type" (always "transaction") and "Type", which
		// encoding/json would confuse: read the keys exactly.
		var txns struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		r.get(t, "/ticket/"+strconv.Itoa(id)+"/history", url.Values{"fields": {"Type"}, "per_page": {"100"}, "page": {strconv.Itoa(page)}}, &txns)
		for _, tx := range txns.Items {
			var txID rtString
			var typ string
			if json.Unmarshal(tx["id"], &txID) != nil || json.Unmarshal(tx["Type"], &typ) != nil {
				t.Fatalf("testenv: RT history of ticket %d: unexpected item %v", id, tx)
			}
			types[string(txID)] = typ
		}
		if len(txns.Items) < 100 {
			break
		}
	}
	var out []RTMessage
	for page := 1; ; page++ {
		var atts struct {
			Items []struct {
				TransactionID rtString `json:"TransactionId"`
				ContentType   string   `json:"ContentType"`
				Content       string   `json:"Content"`
			} `json:"items"`
		}
		r.get(t, "/ticket/"+strconv.Itoa(id)+"/attachments", url.Values{
			"fields": {"TransactionId,ContentType,Content"}, "per_page": {"100"}, "orderby": {"id"}, "page": {strconv.Itoa(page)},
		}, &atts)
		for _, a := range atts.Items {
			if !strings.HasPrefix(a.ContentType, "text/") {
				continue
			}
			txn, _ := strconv.Atoi(string(a.TransactionID))
			out = append(out, RTMessage{TransactionID: txn, Type: types[string(a.TransactionID)], ContentType: a.ContentType, Content: a.Content})
		}
		if len(atts.Items) < 100 {
			break
		}
	}
	return out
}

// get GETs a REST 2.0 path as root and decodes the JSON answer into out.
func (r RT) get(t testing.TB, path string, q url.Values, out any) {
	t.Helper()
	u := r.URL + "/REST/2.0" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatalf("testenv: RT: %v", err)
	}
	req.Header.Set("Authorization", "token "+r.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: RT GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("testenv: RT GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: RT GET %s: HTTP %d: %s", u, resp.StatusCode, body.String())
	}
	if err := json.Unmarshal(body.Bytes(), out); err != nil {
		t.Fatalf("testenv: RT GET %s: %v: %s", u, err, body.String())
	}
}

type rtTicketJSON struct {
	ID       rtString `json:"id"`
	Subject  string   `json:"Subject"`
	Status   string   `json:"Status"`
	Priority rtString `json:"Priority"`
	Queue    struct {
		Name string `json:"Name"`
	} `json:"Queue"`
	Owner struct {
		ID string `json:"id"`
	} `json:"Owner"`
	CustomFields []struct {
		Name   string   `json:"name"`
		Values []string `json:"values"`
	} `json:"CustomFields"`
}

func (j rtTicketJSON) ticket() RTTicket {
	id, _ := strconv.Atoi(string(j.ID))
	prio, _ := strconv.Atoi(string(j.Priority))
	tk := RTTicket{ID: id, Subject: j.Subject, Queue: j.Queue.Name, Status: j.Status, Priority: prio,
		Owner: j.Owner.ID, CF: map[string][]string{}}
	for _, cf := range j.CustomFields {
		tk.CF[cf.Name] = append(tk.CF[cf.Name], cf.Values...)
	}
	return tk
}

// rtString is a JSON string or number: RT sends numbers as either.
type rtString string

func (s *rtString) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case string:
		*s = rtString(v)
	case float64:
		*s = rtString(strconv.FormatFloat(v, 'f', -1, 64))
	case nil:
		*s = ""
	default:
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	return nil
}

// moduleRoot is the nearest directory above the working directory (a test
// runs in its package's directory) holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
