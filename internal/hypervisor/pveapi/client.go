package pveapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// ErrUnreachable is returned (wrapped) when a node did not answer in time.
var ErrUnreachable = errors.New("node did not answer")

// APIError is an error response of the API.
type APIError struct {
	Method string
	// Path is below /api2/json, without the query.
	Path    string
	Status  int
	Message string
	Fields  map[string]string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			msg += fmt.Sprintf("; %s: %s", k, strings.TrimSpace(e.Fields[k]))
		}
	}
	return msg
}

// Unwrap lets errors.Is find hypervisor.ErrLocked and ErrNotFound.
func (e *APIError) Unwrap() error {
	switch {
	case isLockMessage(e.Message):
		return hypervisor.ErrLocked
	case strings.Contains(e.Message, "does not exist") && strings.Contains(e.Message, "Configuration file"):
		return hypervisor.ErrNotFound
	}
	return nil
}

// TaskError is a task that ended with an error exit status.
type TaskError struct {
	UPID       string
	Node       string
	Type       string
	ExitStatus string
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s on node %s failed: %s", e.Type, e.Node, e.ExitStatus)
}

// Unwrap lets errors.Is find hypervisor.ErrLocked.
func (e *TaskError) Unwrap() error {
	if isLockMessage(e.ExitStatus) {
		return hypervisor.ErrLocked
	}
	return nil
}

// lockMessageRE matches Proxmox's lock refusals only: "CT 100 is locked
// (disk)", "VM is locked (clone)", "can't lock file '...' - got timeout".
// Other timeouts are not lock contention.
var lockMessageRE = regexp.MustCompile(`\b(?:CT|VM)(?: \d+)? is locked \(|can't lock file '[^']*' - got timeout`)

func isLockMessage(msg string) bool { return lockMessageRE.MatchString(msg) }

// maxAnswer bounds the body of an answer phoenix reads. The biggest one
// is /cluster/resources, about 400 bytes per guest: 16 MiB holds 40,000
// guests and stops a proxy or a broken node from filling memory.
const maxAnswer = 16 << 20

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// client is a small client of the endpoints phoenix uses: typed answers
// checked before use, errors that name the endpoint, one retry policy,
// one task waiter, a bound on writes per node, and failing fast on a node
// that stopped answering.
type client struct {
	hc   *http.Client
	base string
	auth string
	opts *Options

	mu    sync.Mutex
	slots map[string]chan struct{}
	down  map[string]time.Time
	// sleep waits between retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

func newClient(opts *Options) (*client, error) {
	base, err := apiURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Token.IsZero() {
		return nil, errors.New("no API token")
	}
	tlsCfg, err := opts.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.Proxy = nil
	hc := &http.Client{
		Transport: tr,
		// Covers reading the body too: an answer that never ends is cut.
		Timeout: opts.Timeout,
		// The token must not follow a redirect to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &client{hc: hc, base: base, auth: "PVEAPIToken=" + opts.Token.ID + "=" + opts.Token.secret, opts: opts,
		slots: map[string]chan struct{}{}, down: map[string]time.Time{}, sleep: retry.Sleep}, nil
}

// nodeOf returns the node a path addresses, or "".
func nodeOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/nodes/")
	if !ok {
		return ""
	}
	node, _, _ := strings.Cut(rest, "/")
	return node
}

// checker is an answer that can say whether it holds what phoenix uses.
type checker interface{ check() error }

// call does one request and decodes its data into out (nil: discard).
// A GET whose answer has no data fails; other methods may answer null.
func (c *client) call(ctx context.Context, method, path string, params map[string]any, out any) error {
	node := nodeOf(path)
	if err := c.checkDown(node, method, path); err != nil {
		return err
	}
	raw, ctype, err := c.do(ctx, method, path, params)
	if err != nil {
		return c.explain(ctx, node, method, path, err)
	}
	return decodeAnswer(method, stripQuery(path), ctype, raw, out)
}

// decodeAnswer decodes a whole answer, {"data": ...}, into out and checks
// it; its errors name the endpoint.
func decodeAnswer(method, path, ctype string, raw []byte, out any) error {
	data, err := envelope(method, path, ctype, raw)
	if err != nil || out == nil {
		return err
	}
	if err := decodeData(data, out, method == http.MethodGet); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// decodeData decodes an answer's data into out and checks it.
func decodeData(data json.RawMessage, out any, required bool) error {
	if isNull(data) {
		if required {
			return errors.New("answer has no data")
		}
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if ch, ok := out.(checker); ok {
		if err := ch.check(); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
	}
	return nil
}

func isNull(data json.RawMessage) bool {
	d := bytes.TrimSpace(data)
	return len(d) == 0 || string(d) == "null"
}

func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// do sends one request and returns the body of a 2xx answer and its
// Content-Type. Parameters go as a JSON body (POST, PUT) or the query
// (GET, DELETE).
func (c *client) do(ctx context.Context, method, path string, params map[string]any) ([]byte, string, error) {
	u := c.base + path
	var body io.Reader
	switch method {
	case http.MethodPost, http.MethodPut:
		if params == nil {
			params = map[string]any{}
		}
		b, err := json.Marshal(params)
		if err != nil {
			return nil, "", err
		}
		body = bytes.NewReader(b)
	case http.MethodGet, http.MethodDelete:
		if len(params) > 0 {
			q := url.Values{}
			for k, v := range params {
				q.Set(k, fmt.Sprint(v))
			}
			sep := "?"
			if strings.Contains(u, "?") {
				sep = "&"
			}
			u += sep + q.Encode()
		}
	default:
		return nil, "", fmt.Errorf("unsupported method %s", method)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "phoenix")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, "", apiError(method, stripQuery(path), res)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return nil, "", err
	}
	if len(raw) > maxAnswer {
		return nil, "", fmt.Errorf("%s %s: answer larger than %d MiB; refusing it", method, stripQuery(path), maxAnswer>>20)
	}
	return raw, res.Header.Get("Content-Type"), nil
}

// envelope returns the data of an answer, {"data": ...}.
func envelope(method, path, ctype string, raw []byte) (json.RawMessage, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, &decodeError{method: method, path: path, ctype: ctype, body: raw, err: err}
	}
	return env.Data, nil
}

// decodeError is an answer that is not Proxmox's JSON envelope: an HTML
// page from a proxy, a truncated body, anything.
type decodeError struct {
	method, path, ctype string
	body                []byte
	err                 error
}

func (e *decodeError) Error() string {
	snip := e.body
	if len(snip) > 60 {
		snip = snip[:60]
	}
	return fmt.Sprintf("%s %s: answer is not the API's JSON (Content-Type %q, starts %q): %v", e.method, e.path, e.ctype, snip, e.err)
}

// apiError reads an error answer. Proxmox puts the message of a 500 in the
// HTTP status line (newer versions also in the body's "message") and the
// per-parameter complaints of a 400 in "errors".
func apiError(method, path string, res *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	e := &APIError{Method: method, Path: path, Status: res.StatusCode}
	e.Message = strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode)))
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		e.Message += fmt.Sprintf(": redirect to %q not followed (the token goes only to --pve-url)", res.Header.Get("Location"))
		return e
	}
	var doc struct {
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil {
		if m := strings.TrimSpace(doc.Message); m != "" && !strings.Contains(e.Message, m) {
			if e.Message == "" || e.Message == http.StatusText(res.StatusCode) {
				e.Message = m
			} else {
				e.Message += ": " + m
			}
		}
		e.Fields = doc.Errors
	}
	if e.Message == "" {
		e.Message = http.StatusText(res.StatusCode)
	}
	return e
}

// explain turns what a request returned into an error that names the
// endpoint and says what went wrong.
func (c *client) explain(ctx context.Context, node, method, path string, err error) error {
	path = stripQuery(path)
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			return fmt.Errorf("%s %s: %d %s: the API refused the token (check the token file, and that the token is not expired)",
				method, path, ae.Status, ae.Message)
		}
		return ae
	}
	var de *decodeError
	if errors.As(err, &de) {
		return de
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if node != "" {
			c.markDown(node)
			return &netError{method: method, path: path, sent: true, nodeDown: true,
				err: fmt.Errorf("no answer within %s (is node %s up?): %w", c.opts.Timeout, node, ErrUnreachable)}
		}
		return &netError{method: method, path: path, sent: true, err: fmt.Errorf("no answer within %s: %w", c.opts.Timeout, ErrUnreachable)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	// A refused connection never carried the request, so even a POST may
	// be sent again.
	return &netError{method: method, path: path, sent: !errors.Is(err, syscall.ECONNREFUSED), err: err}
}

// stopRetry is an error retrying must not follow.
type stopRetry struct{ err error }

func (e *stopRetry) Error() string { return e.err.Error() }
func (e *stopRetry) Unwrap() error { return e.err }

// netError is a request that got no answer.
type netError struct {
	method, path string
	// sent is false when the request certainly never reached the server.
	sent bool
	// nodeDown is set when the node the request addressed is taken for
	// down (it let this or an earlier request time out).
	nodeDown bool
	err      error
}

func (e *netError) Error() string { return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err) }
func (e *netError) Unwrap() error { return e.err }

// markDown remembers that node let a request time out. Asking it again
// at once would only make every guest on it wait out the timeout again.
func (c *client) markDown(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[node] = time.Now().Add(c.opts.NodeDownFor)
}

func (c *client) checkDown(node, method, path string) error {
	if node == "" {
		return nil
	}
	c.mu.Lock()
	until, ok := c.down[node]
	c.mu.Unlock()
	if !ok || time.Now().After(until) {
		return nil
	}
	return &netError{method: method, path: path, sent: false, nodeDown: true,
		err: fmt.Errorf("node %s did not answer a request within %s; not asking it again before %s: %w",
			node, c.opts.Timeout, until.Format("15:04:05"), ErrUnreachable)}
}

// retryable reports whether trying again may help. Proxmox reports every
// failure as a 500, permanent ones ("already exists") included, so a 500 is
// retried only when its text marks contention or a timeout; the other 5xx
// (502-504, and 595/596 from the API proxy failing to reach a node) are
// transient by nature.
func retryable(err error, idempotent bool) bool {
	var stop *stopRetry
	if errors.As(err, &stop) {
		return false
	}
	if errors.Is(err, hypervisor.ErrLocked) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusInternalServerError:
			m := strings.ToLower(ae.Message)
			return strings.Contains(m, "timeout") || strings.Contains(m, "temporarily") || strings.Contains(m, "try again")
		case ae.Status > 500 && ae.Status != http.StatusNotImplemented:
			return true
		}
		return false
	}
	var ne *netError
	if errors.As(err, &ne) {
		if ne.nodeDown {
			// Asking a node that stopped answering again would only fail
			// fast (or wait out another timeout).
			return false
		}
		return idempotent || !ne.sent
	}
	return false
}

// retry runs fn until it succeeds, fails in a way retrying cannot fix, or
// used up the retries. Waits start at Backoff, double per retry up to 30s,
// with ±25% jitter so that parallel workers spread out.
func (c *client) retry(ctx context.Context, idempotent bool, fn func() error) error {
	p := retry.Policy{Initial: c.opts.Backoff, Factor: 2, Max: 30 * time.Second,
		Jitter: 0.5, Centered: true, Retries: c.opts.Retries, Sleep: c.sleep}
	r := p.Start()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if !retryable(err, idempotent) || ctx.Err() != nil {
			return gaveUp(err, r.Tries())
		}
		if werr := r.Wait(ctx); errors.Is(werr, retry.ErrExhausted) {
			return gaveUp(err, r.Tries())
		} else if werr != nil {
			return fmt.Errorf("%w; stopped retrying: %w", err, werr)
		}
	}
}

// gaveUp is the last error of a retried request, saying how many tries
// were made when there was more than one.
func gaveUp(err error, tries int) error {
	if tries > 1 {
		return fmt.Errorf("%w (gave up after %d tries)", err, tries)
	}
	return err
}

// get reads an endpoint, with retries.
func (c *client) get(ctx context.Context, path string, out any) error {
	return c.retry(ctx, true, func() error { return c.call(ctx, http.MethodGet, path, nil, out) })
}

// acquire takes a write slot on each node (in name order, so that two
// callers needing the same nodes cannot deadlock) and returns their release.
func (c *client) acquire(ctx context.Context, nodes ...string) (func(), error) {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	var held []chan struct{}
	release := func() {
		for _, s := range held {
			<-s
		}
	}
	for _, n := range nodes {
		c.mu.Lock()
		s := c.slots[n]
		if s == nil {
			s = make(chan struct{}, c.opts.NodeConcurrency)
			c.slots[n] = s
		}
		c.mu.Unlock()
		select {
		case s <- struct{}{}:
			held = append(held, s)
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// write does a request that may start a task and waits for the task,
// holding a write slot on nodes, retrying as retryable allows. Some writes
// answer with no task (a config PUT, a container's template conversion):
// they are done when the request returns.
func (c *client) write(ctx context.Context, nodes []string, method, path string, params map[string]any) error {
	return c.writeChecked(ctx, nodes, method, path, params, nil)
}

// reread looks at the cluster again before a write is sent a second time:
// done means the first attempt did the work after all; an error stops
// the retries.
type reread func(ctx context.Context) (done bool, err error)

// writeChecked is write for writes that allocate disks (create, clone,
// resize): a failed attempt may still have done its work (a proxy that
// lost the answer, a task that failed after allocating), so before each
// retry check re-reads the cluster instead of sending the write blindly.
func (c *client) writeChecked(ctx context.Context, nodes []string, method, path string, params map[string]any, check reread) error {
	release, err := c.acquire(ctx, nodes...)
	if err != nil {
		return err
	}
	defer release()
	tries := 0
	return c.retry(ctx, method == http.MethodPut, func() error {
		if tries++; tries > 1 && check != nil {
			done, err := check(ctx)
			if err != nil {
				return &stopRetry{fmt.Errorf("%s %s failed, and before sending it again: %w", method, stripQuery(path), err)}
			}
			if done {
				return nil
			}
		}
		var upid taskID
		if err := c.call(ctx, method, path, params, &upid); err != nil {
			return err
		}
		if upid.raw == "" {
			return nil
		}
		return c.wait(ctx, upid, method+" "+stripQuery(path))
	})
}

// taskID is a task's UPID as a write answers it,
// UPID:node:pid:pstart:starttime:type:id:user: (PVE::Tools upid_decode).
type taskID struct {
	raw, node, typ string
}

var upidRE = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8,9}:[0-9A-Fa-f]{8}:([^:\s]+):[^:\s]*:[^:\s]+:$`)

func (t *taskID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a task ID (UPID) or null: %w", err)
	}
	return t.parse(s)
}

func (t *taskID) parse(s string) error {
	m := upidRE.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q is not a task ID (UPID:node:pid:pstart:starttime:type:id:user:)", truncate(s, 120))
	}
	*t = taskID{raw: s, node: m[1], typ: m[3]}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// taskStatus is GET /nodes/{node}/tasks/{upid}/status. Only status and
// exitstatus are used: the node and type come from the UPID phoenix holds.
type taskStatus struct {
	Status     *string `json:"status"`
	ExitStatus *string `json:"exitstatus"`
}

func (s *taskStatus) check() error {
	switch {
	case s.Status == nil:
		return errors.New("no status")
	case *s.Status != "running" && *s.Status != "stopped":
		return fmt.Errorf("status %q, want running or stopped", truncate(*s.Status, 60))
	}
	return nil
}

// wait polls a task until it stops and checks how it ended: "OK" and
// "WARNINGS: n" are success, anything else is the error text. started
// names the request that started it, for errors.
func (c *client) wait(ctx context.Context, t taskID, started string) error {
	path := fmt.Sprintf("/nodes/%s/tasks/%s/status", t.node, url.PathEscape(t.raw))
	deadline := time.Now().Add(c.opts.TaskTimeout)
	for {
		var st taskStatus
		err := c.retry(ctx, true, func() error { return c.call(ctx, http.MethodGet, path, nil, &st) })
		if err != nil {
			return fmt.Errorf("wait for task %s (started by %s): %w", t.typ, started, err)
		}
		if *st.Status == "stopped" {
			exit := ""
			if st.ExitStatus != nil {
				exit = *st.ExitStatus
			}
			if exit == "OK" || strings.HasPrefix(exit, "WARNINGS") {
				return nil
			}
			if exit == "" {
				exit = "stopped without an exit status"
			}
			return &TaskError{UPID: t.raw, Node: t.node, Type: t.typ, ExitStatus: exit}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s on node %s (started by %s): still running after %s", t.typ, t.node, started, c.opts.TaskTimeout)
		}
		if err := retry.Sleep(ctx, c.opts.TaskPoll); err != nil {
			return fmt.Errorf("wait for task %s on node %s: %w", t.typ, t.node, err)
		}
	}
}
