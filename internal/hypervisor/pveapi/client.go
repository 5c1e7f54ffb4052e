package pveapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// ErrUnreachable is returned (wrapped) when a node did not answer in time.
var ErrUnreachable = errors.New("node did not answer")

// APIError is an error response of the API. Proxmox puts the message of a
// 500 in the HTTP status line (newer versions also in the body's
// "message") and the per-parameter complaints of a 400 in "errors".
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

func isLockMessage(msg string) bool {
	return strings.Contains(msg, "is locked") || strings.Contains(msg, "can't lock file") ||
		strings.Contains(msg, "got timeout")
}

// errorTransport turns every error response into an *APIError before
// go-proxmox sees it. The library reduces a 500 to a bare error string and
// tries to decode other error bodies as data; reading the response here
// keeps the status, the status-line message, the body's message and the
// parameter errors.
type errorTransport struct {
	base     http.RoundTripper
	basePath string
}

func (t errorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil || res.StatusCode < 400 {
		return res, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &APIError{Method: req.Method, Path: strings.TrimPrefix(req.URL.Path, t.basePath), Status: res.StatusCode}
	e.Message = strings.TrimSpace(strings.TrimPrefix(res.Status, fmt.Sprint(res.StatusCode)))
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
	return nil, e
}

// quietLog drops go-proxmox's log lines: its default logger writes to the
// process's stderr behind the caller's back, and its debug lines carry
// request bodies.
type quietLog struct{}

func (quietLog) Debugf(string, ...any) {}
func (quietLog) Errorf(string, ...any) {}
func (quietLog) Infof(string, ...any)  {}
func (quietLog) Warnf(string, ...any)  {}

// client is go-proxmox plus what phoenix needs around it: errors that name
// the endpoint, retries with backoff, a bound on writes per node, and
// failing fast on a node that stopped answering.
type client struct {
	pc   *proxmox.Client
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
	u, _ := url.Parse(base)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.Proxy = nil
	hc := &http.Client{
		Transport: errorTransport{base: tr, basePath: u.Path},
		Timeout:   opts.Timeout,
		// The token must not follow a redirect to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	pc := proxmox.NewClient(base,
		proxmox.WithHTTPClient(hc),
		proxmox.WithAPIToken(opts.Token.ID, opts.Token.secret),
		proxmox.WithUserAgent("phoenix"),
		proxmox.WithLogger(quietLog{}),
	)
	return &client{pc: pc, opts: opts, slots: map[string]chan struct{}{}, down: map[string]time.Time{}, sleep: hypervisor.Sleep}, nil
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

// call does one request and decodes its data into out (nil: discard).
func (c *client) call(ctx context.Context, method, path string, params map[string]any, out any) error {
	node := nodeOf(path)
	if err := c.checkDown(node, method, path); err != nil {
		return err
	}
	var err error
	switch method {
	case http.MethodGet:
		err = c.pc.Get(ctx, path, out)
	case http.MethodPost:
		err = c.pc.Post(ctx, path, params, out)
	case http.MethodPut:
		err = c.pc.Put(ctx, path, params, out)
	case http.MethodDelete:
		err = c.pc.Delete(ctx, path, out)
	default:
		return fmt.Errorf("%s %s: unsupported method", method, path)
	}
	return c.explain(ctx, node, method, path, err)
}

// explain turns what go-proxmox returned into an error that names the
// endpoint and says what went wrong.
func (c *client) explain(ctx context.Context, node, method, path string, err error) error {
	if err == nil {
		return nil
	}
	path, _, _ = strings.Cut(path, "?")
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			return fmt.Errorf("%s %s: %d %s: the API refused the token (check the token file, and that the token is not expired)",
				method, path, ae.Status, ae.Message)
		}
		return ae
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

// backoff is the wait before retry n (0-based): Backoff doubled per retry,
// capped at 30s, with ±25% jitter so that parallel workers spread out.
func (c *client) backoff(n int) time.Duration {
	d := c.opts.Backoff << min(n, 16)
	d = min(d, 30*time.Second)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// retry runs fn until it succeeds, fails in a way retrying cannot fix, or
// used up the retries.
func (c *client) retry(ctx context.Context, idempotent bool, fn func() error) error {
	for n := 0; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		if n >= c.opts.Retries || !retryable(err, idempotent) || ctx.Err() != nil {
			if n > 0 {
				return fmt.Errorf("%w (gave up after %d tries)", err, n+1)
			}
			return err
		}
		if werr := c.sleep(ctx, c.backoff(n)); werr != nil {
			return fmt.Errorf("%w; stopped retrying: %w", err, werr)
		}
	}
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
	release, err := c.acquire(ctx, nodes...)
	if err != nil {
		return err
	}
	defer release()
	return c.retry(ctx, method == http.MethodPut, func() error {
		var upid proxmox.UPID
		if err := c.call(ctx, method, path, params, &upid); err != nil {
			return err
		}
		if upid == "" {
			return nil
		}
		return c.wait(ctx, upid)
	})
}

// wait waits for a task to stop and checks how it ended. go-proxmox's
// Task.Wait only waits for the status "stopped" and returns nil however
// the task ended, so the exit status is checked here: "OK" and
// "WARNINGS: n" are success (the library's own IsSuccessful counts
// warnings as failure), anything else is the error text.
func (c *client) wait(ctx context.Context, upid proxmox.UPID) error {
	// NewTask indexes the UPID's fields without checking how many there
	// are; a short one would panic there.
	if strings.Count(string(upid), ":") < 8 {
		return fmt.Errorf("task %q: not a UPID", upid)
	}
	t := proxmox.NewTask(upid, c.pc)
	if t == nil || t.Node == "" {
		return fmt.Errorf("task %q: not a UPID", upid)
	}
	path := fmt.Sprintf("/nodes/%s/tasks/%s/status", t.Node, upid)
	if err := c.checkDown(t.Node, http.MethodGet, path); err != nil {
		return err
	}
	if err := t.Wait(ctx, c.opts.TaskPoll, c.opts.TaskTimeout); err != nil {
		if errors.Is(err, proxmox.ErrTimeout) {
			return fmt.Errorf("task %s on node %s: still running after %s", t.Type, t.Node, c.opts.TaskTimeout)
		}
		return fmt.Errorf("wait for task %s: %w", t.Type, c.explain(ctx, t.Node, http.MethodGet, path, err))
	}
	if t.ExitStatus == "OK" || strings.HasPrefix(t.ExitStatus, "WARNINGS") {
		return nil
	}
	return &TaskError{UPID: string(upid), Node: t.Node, Type: t.Type, ExitStatus: t.ExitStatus}
}
