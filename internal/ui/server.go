package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/httpguard"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

//go:embed assets
var assets embed.FS

var pageTemplate = template.Must(template.ParseFS(assets, "assets/index.html"))

// Options configure the page and its API.
type Options struct {
	// AllowConverge turns on POST /api/v1/guests/{id}/converge.
	AllowConverge bool
	// Token is the bearer token the mutating endpoints require; it must be
	// set when AllowConverge is (see LoadOrCreateToken).
	Token string
	// TokenPath is where the token lives, for the page to tell the operator.
	TokenPath string
	// PollInterval is how often the event stream looks for changes while a
	// page is open (default 250ms, so a change shows within a second).
	PollInterval time.Duration
	// Heartbeat is how often an idle event stream sends a comment, so that
	// proxies keep it open (default 15s).
	Heartbeat time.Duration
	// AllowedHosts are names, besides IP addresses and localhost, that a
	// request may carry as Host (--ui-allowed-host, for a reverse proxy).
	AllowedHosts []string
}

// Handler serves the status page and its API. Build it with NewHandler.
type Handler struct {
	ctx  context.Context
	st   State
	conv Converger
	opts Options
	mux  *http.ServeMux
	hub  *hub
	// convergeMu serializes converge requests: each is a read-modify-write
	// of a config file, and two at once could lose one of them.
	convergeMu sync.Mutex
}

var _ http.Handler = (*Handler)(nil)

// NewHandler builds the page and API over st, asking conv for converges.
// Streams to browsers end when ctx does (an http.Server's Shutdown waits
// for them otherwise). conv may be nil when opts.AllowConverge is false.
//
// Routes: GET / (the page), /static/*, /graph.svg, /api/v1/guests,
// /api/v1/guests/{id}, /api/v1/events (server-sent events), and
// POST /api/v1/guests/{id}/converge.
func NewHandler(ctx context.Context, st State, conv Converger, opts Options) (*Handler, error) {
	if opts.AllowConverge {
		if conv == nil {
			return nil, errors.New("status page: converge is allowed but nothing handles it")
		}
		if len(opts.Token) < minTokenLen {
			return nil, errors.New("status page: converge is allowed but no token is set")
		}
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 15 * time.Second
	}
	h := &Handler{ctx: ctx, st: st, conv: conv, opts: opts, mux: http.NewServeMux()}
	h.hub = newHub(ctx, opts.PollInterval, h.eventData)
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /static/graph.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, GraphCSS())
	})
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	h.mux.HandleFunc("GET /graph.svg", h.graph)
	h.mux.HandleFunc("GET /api/v1/guests", h.list)
	h.mux.HandleFunc("GET /api/v1/guests/{id}", h.detail)
	h.mux.HandleFunc("POST /api/v1/guests/{id}/converge", h.converge)
	h.mux.HandleFunc("GET /api/v1/events", h.events)
	return h, nil
}

// ServeHTTP refuses requests addressed to a name other than an IP address
// or localhost, then routes. A browser visiting an attacker's site whose
// name was re-pointed at 127.0.0.1 (DNS rebinding) sends that name as Host;
// without this check the page's data would be the attacker's to read.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpguard.AllowedHost(r.Host, h.opts.AllowedHosts) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("host %q refused: open the page by IP address (http://127.0.0.1:PORT/) or as localhost", r.Host))
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// GuestView is a guest as the API shows it: the fields of `phoenix status
// -o json` (live state from the host plus the recorded status) and what the
// page shows beside them.
type GuestView struct {
	Exists   bool   `json:"exists"`
	State    string `json:"state"`
	Name     string `json:"name,omitempty"`
	Template bool   `json:"template"`
	// RequestedConvergeAt is the converge annotation of the desired state;
	// once the controller handled it, lastHandledConvergeAt equals it.
	RequestedConvergeAt string `json:"requestedConvergeAt,omitempty"`
	api.Status
}

// GuestDetail is one guest with its effective spec and its edges.
type GuestDetail struct {
	GuestView
	// File is the config file the guest is read from; empty for a guest
	// that left the files.
	File string `json:"file,omitempty"`
	// Spec is the effective spec (for a VM, vm_defaults overlaid),
	// unknown fields and annotations included.
	Spec     json.RawMessage `json:"spec,omitempty"`
	Needs    []EdgeView      `json:"needs"`
	NeededBy []EdgeView      `json:"neededBy"`
}

// EdgeView is one edge of a guest: build (clone) or runtime (dependency).
type EdgeView struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

func edgeKindName(k api.EdgeKind) string {
	if k == api.BuildEdge {
		return "build"
	}
	return "runtime"
}

// entry is one guest of a snapshot: from the files, or recorded only.
type entry struct {
	id     api.ID
	kind   api.Kind
	guest  *api.Guest // nil: no longer in the files
	status *api.Status
}

// collect reads the desired state and every guest's status record.
// collectFor is collect for a handler that needs a desired state: it
// answers the request itself (500, or 503 before the first valid load)
// when there is none.
func (h *Handler) collectFor(w http.ResponseWriter) (*api.Config, []entry, bool) {
	cfg, entries, err := h.collect()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil, nil, false
	}
	if cfg == nil {
		writeError(w, http.StatusServiceUnavailable, "no valid desired state loaded yet")
		return nil, nil, false
	}
	return cfg, entries, true
}

func (h *Handler) collect() (*api.Config, []entry, error) {
	cfg := h.st.Desired()
	if cfg == nil {
		return nil, nil, nil
	}
	var out []entry
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		out = append(out, entry{id: id, kind: g.Kind, guest: g, status: h.status(id, g.Kind)})
	}
	recorded, err := h.st.Recorded()
	if err != nil {
		return cfg, out, fmt.Errorf("list status records: %w", err)
	}
	for _, id := range recorded {
		if cfg.Guest(id) != nil {
			continue
		}
		st := h.status(id, "")
		if st.Kind == "" {
			continue
		}
		out = append(out, entry{id: id, kind: st.Kind, status: st})
	}
	return cfg, out, nil
}

// status reads a record; an unreadable one is shown as never applied, with
// the reason as its error, rather than hiding every other guest.
func (h *Handler) status(id api.ID, kind api.Kind) *api.Status {
	st, err := h.st.Status(id, kind)
	if err != nil {
		return &api.Status{ID: id.String(), Kind: kind, Phase: api.PhasePending, LastError: "status record unreadable: " + err.Error()}
	}
	if st.Kind == "" {
		st.Kind = kind
	}
	return st
}

func (h *Handler) buildGraph(cfg *api.Config, entries []entry) *Graph {
	g := NewGraph(cfg, nil)
	phase := make(map[api.ID]api.Phase, len(entries))
	for _, e := range entries {
		if e.guest == nil {
			g.AddOrphan(e.id, e.kind)
		}
		phase[e.id] = e.status.Phase
	}
	g.SetPhases(func(id api.ID, _ api.Kind) api.Phase { return phase[id] })
	return g
}

func (h *Handler) view(ctx context.Context, e entry) (GuestView, error) {
	v := GuestView{Status: *e.status}
	if e.guest != nil {
		v.Name = e.guest.Spec.Name
		v.Template = e.guest.IsTemplateSource()
		v.RequestedConvergeAt = e.guest.ConvergeToken()
	}
	live, err := h.st.Live(ctx, e.kind, e.id)
	if err != nil {
		return v, fmt.Errorf("live state of %s %s: %w", e.kind, e.id, err)
	}
	v.Exists, v.State = live.Exists, live.State()
	return v, nil
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, struct {
		Converge  bool
		TokenPath string
	}{h.opts.AllowConverge, h.opts.TokenPath})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "render page: "+err.Error())
		return
	}
	w.Write(buf.Bytes())
}

func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	cfg, entries, ok := h.collectFor(w)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, Layout(h.buildGraph(cfg, entries)), SVGOptions{Embed: r.URL.Query().Get("embed") == "1"}); err != nil {
		writeError(w, http.StatusInternalServerError, "render graph: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	// Opened on its own the SVG is a document: its <style> must apply,
	// nothing else may load.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Write(buf.Bytes())
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	_, entries, ok := h.collectFor(w)
	if !ok {
		return
	}
	out := make([]GuestView, 0, len(entries))
	for _, e := range entries {
		v, err := h.view(r.Context(), e)
		if err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) detail(w http.ResponseWriter, r *http.Request) {
	id, err := api.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cfg, entries, ok := h.collectFor(w)
	if !ok {
		return
	}
	for _, e := range entries {
		if e.id != id {
			continue
		}
		v, err := h.view(r.Context(), e)
		if err != nil {
			writeError(w, http.StatusBadGateway, err.Error())
			return
		}
		d := GuestDetail{GuestView: v, Needs: []EdgeView{}, NeededBy: []EdgeView{}}
		if e.guest != nil {
			d.File, d.Spec = e.guest.File, e.guest.Raw
			for _, ed := range cfg.Edges(e.guest) {
				d.Needs = append(d.Needs, EdgeView{ID: ed.To.String(), Kind: edgeKindName(ed.Kind)})
			}
			for _, other := range cfg.Dependents(id) {
				for _, ed := range cfg.Edges(cfg.Guest(other)) {
					if ed.To == id {
						d.NeededBy = append(d.NeededBy, EdgeView{ID: other.String(), Kind: edgeKindName(ed.Kind)})
					}
				}
			}
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no guest %s in the desired state or the status records", id))
}

// ConvergeResponse is the answer to a converge request that was handed to
// the controller: the token written; the guest's lastHandledConvergeAt
// takes that value once the converge ran.
type ConvergeResponse struct {
	ID         string `json:"id"`
	Token      string `json:"token"`
	Annotation string `json:"annotation"`
}

func (h *Handler) converge(w http.ResponseWriter, r *http.Request) {
	if !h.opts.AllowConverge {
		writeError(w, http.StatusForbidden, "converge from the status page is off; start the controller with --ui-allow-converge")
		return
	}
	if err := sameOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="phoenix"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <the token in "+h.tokenPath()+">)")
		return
	}
	id, err := api.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cfg := h.st.Desired()
	if cfg == nil {
		writeError(w, http.StatusServiceUnavailable, "no valid desired state loaded yet")
		return
	}
	g := cfg.Guest(id)
	if g == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no guest %s in the desired state", id))
		return
	}
	h.convergeMu.Lock()
	token, err := h.conv.RequestConverge(r.Context(), g)
	h.convergeMu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("converge %s: %v", id, err))
		return
	}
	writeJSON(w, http.StatusAccepted, ConvergeResponse{ID: id.String(), Token: token, Annotation: api.ConvergeAnnotation})
}

func (h *Handler) tokenPath() string {
	if h.opts.TokenPath != "" {
		return h.opts.TokenPath
	}
	return "<state-dir>/" + TokenFile
}

func (h *Handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	return subtle.ConstantTimeCompare([]byte(token), []byte(h.opts.Token)) == 1
}

// sameOrigin refuses a request that a browser made on behalf of another
// site. Browsers say where a request comes from in Sec-Fetch-Site and
// Origin; clients that are not browsers (curl) send neither and are
// judged by their token alone.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("cross-origin request refused (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("cross-origin request refused (Origin: %s)", origin)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("cross-origin request refused: Origin %s is not this page (%s://%s)", origin, scheme, r.Host)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	data, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}

// summary is a guest in the event stream: what the table and the graph
// show. Rev changes with anything in the status record, so the page knows
// to fetch the details it shows again.
type summary struct {
	ID                    string     `json:"id"`
	Kind                  api.Kind   `json:"kind"`
	Name                  string     `json:"name,omitempty"`
	Template              bool       `json:"template"`
	Phase                 api.Phase  `json:"phase"`
	LastAppliedAt         *time.Time `json:"lastAppliedAt,omitempty"`
	LastError             string     `json:"lastError,omitempty"`
	LastHandledConvergeAt string     `json:"lastHandledConvergeAt,omitempty"`
	RequestedConvergeAt   string     `json:"requestedConvergeAt,omitempty"`
	Rev                   string     `json:"rev"`
}

// event is one message of the stream: the whole table, small enough to
// send whole; the page diffs it.
type event struct {
	Loaded bool      `json:"loaded"`
	Shape  string    `json:"shape,omitempty"`
	Guests []summary `json:"guests"`
	Error  string    `json:"error,omitempty"`
}

// eventData is the stream's current message. It reads status records only,
// never the host: it runs several times a second while a page is open, and
// on a real host every look-up is a pct or qm call.
func (h *Handler) eventData() []byte {
	ev := event{Guests: []summary{}}
	cfg, entries, err := h.collect()
	if err != nil {
		ev.Error = err.Error()
	}
	if cfg != nil {
		ev.Loaded = true
		ev.Shape = h.buildGraph(cfg, entries).Shape()
	}
	for _, e := range entries {
		raw, _ := json.Marshal(e.status)
		sum := sha256.Sum256(raw)
		s := summary{ID: e.id.String(), Kind: e.kind, Phase: e.status.Phase, LastAppliedAt: e.status.LastAppliedAt,
			LastError: e.status.LastError, LastHandledConvergeAt: e.status.LastHandledConvergeAt, Rev: hex.EncodeToString(sum[:8])}
		if e.guest != nil {
			s.Name, s.Template, s.RequestedConvergeAt = e.guest.Spec.Name, e.guest.IsTemplateSource(), e.guest.ConvergeToken()
		}
		ev.Guests = append(ev.Guests, s)
	}
	data, _ := json.Marshal(ev)
	return data
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported by this connection")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	notify, cancel := h.hub.subscribe()
	defer cancel()
	last := h.eventData()
	if _, err := fmt.Fprintf(w, "retry: 1000\n\nevent: guests\ndata: %s\n\n", last); err != nil {
		return
	}
	fl.Flush()
	beat := time.NewTicker(h.opts.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.ctx.Done():
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-notify:
			data := h.hub.current()
			if data == nil || bytes.Equal(data, last) {
				continue
			}
			last = data
			if _, err := fmt.Fprintf(w, "event: guests\ndata: %s\n\n", data); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// hub polls for changes while at least one page is open, once for all of
// them, and wakes each stream when the message changed.
type hub struct {
	ctx      context.Context
	interval time.Duration
	poll     func() []byte

	mu      sync.Mutex
	subs    map[chan struct{}]struct{}
	latest  []byte
	running bool
}

func newHub(ctx context.Context, interval time.Duration, poll func() []byte) *hub {
	return &hub{ctx: ctx, interval: interval, poll: poll, subs: map[chan struct{}]struct{}{}}
}

func (h *hub) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	if !h.running {
		h.running = true
		go h.run()
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

func (h *hub) current() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest
}

func (h *hub) run() {
	stop := func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.subs) == 0 || h.ctx.Err() != nil {
			h.running = false
			h.latest = nil
			return true
		}
		return false
	}
	for !stop() {
		start := time.Now()
		data := h.poll()
		took := time.Since(start)
		h.mu.Lock()
		if !bytes.Equal(data, h.latest) {
			h.latest = data
			for ch := range h.subs {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
		h.mu.Unlock()
		// On a large lab a poll may take a while: never spend more than a
		// fifth of the time polling.
		_ = retry.Sleep(h.ctx, max(h.interval, 4*took))
	}
}
