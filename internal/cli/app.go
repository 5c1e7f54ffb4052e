package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// app is one run of the CLI.
type app struct {
	// ctx ends on SIGINT/SIGTERM; loading stops with it.
	ctx    context.Context
	opts   options
	stdout io.Writer
	stderr io.Writer
	// reported is set once an error was printed in full, so Run does not
	// print it again.
	reported bool
	// closers are released when the verb ends (the sim keeps files open).
	closers []io.Closer
}

// loadConfig loads and validates the desired state, printing every problem.
func (a *app) loadConfig(verb string) (*api.Config, error) {
	if err := a.opts.validate(); err != nil {
		return nil, err
	}
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := desired.LoadContext(ctx, a.opts.ConfigDir)
	if err == nil && a.opts.Strict {
		err = desired.Strict(cfg)
	}
	if err != nil {
		a.fail(verb, err)
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(a.stderr, "phoenix: %s\n", w)
	}
	return cfg, nil
}

// fail prints an error that ends the verb before any action ran: every
// problem of an invalid config on its own line, and in json mode a result
// document carrying it.
func (a *app) fail(verb string, err error) {
	a.reported = true
	if inv, ok := err.(*api.InvalidError); ok {
		for _, p := range inv.Problems {
			fmt.Fprintf(a.stderr, "phoenix: %s\n", p)
		}
		for _, p := range inv.Warnings {
			fmt.Fprintf(a.stderr, "phoenix: %s\n", p)
		}
	} else {
		fmt.Fprintf(a.stderr, "phoenix: %v\n", err)
	}
	if a.opts.Output == "json" {
		a.writeJSON(plan.ResultDoc{Verb: verb, Targets: []string{}, Actions: []plan.ActionDoc{}, Error: err.Error()})
	}
}

// open builds the environment a verb acts in.
func (a *app) open(cfg *api.Config) (*env, error) {
	if err := a.opts.stateDirReady(); err != nil {
		return nil, err
	}
	host, err := a.opts.newHost(a.stderr)
	if err != nil {
		return nil, err
	}
	if c, ok := host.(io.Closer); ok {
		a.closers = append(a.closers, c)
	}
	if p, ok := host.(hypervisor.Placer); ok {
		// A multi-node backend places new guests by their node field.
		p.SetPlacement(cfg)
	}
	if c, ok := host.(configChecker); ok {
		if err := c.CheckConfig(cfg); err != nil {
			return nil, err
		}
	}
	var st *status.Store
	if dir := filepath.Join(a.opts.StateDir, "status"); a.opts.readOnly || a.opts.DryRun {
		st = status.NewReadOnlyStore(dir)
	} else if st, err = status.NewStore(dir); err != nil {
		return nil, err
	}
	flows := reconcilers.NewWorkflows(host, a.opts.scripts())
	return &env{cfg: cfg, host: host, status: st, flows: flows, stateDir: a.opts.StateDir}, nil
}

// preflight checks, before any guest is touched, that every script the
// plan will run exists and may be run: a missing script used to be found
// after define, start and snapshot had already run.
func (a *app) preflight(e *env, p *plan.Plan) error {
	scripts := a.opts.scripts()
	var lines []string
	seen := map[api.ID]bool{}
	for _, act := range p.Actions {
		if act.Action != plan.ActCreate || seen[act.ID] {
			continue
		}
		seen[act.ID] = true
		for _, err := range scripts.Needed(e.cfg, act.Guest) {
			lines = append(lines, fmt.Sprintf("  %s %s: %v", act.Kind, act.ID, err))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	err := usageErr("%s: preflight: %d script problem(s) in %s; nothing was changed:\n%s", p.Verb, len(lines), scripts.Dir, strings.Join(lines, "\n"))
	a.fail(p.Verb, err)
	return err
}

// kindCheck refuses, before anything runs, a plan that acts on a guest
// whose ID the host holds as the other kind: it moved between the LXC and
// the VM file, or someone made it by hand. The status files cannot tell
// (a guest phoenix never touched has none), the host can.
func (a *app) kindCheck(ctx context.Context, e *env, p *plan.Plan) error {
	var problems []api.Problem
	seen := map[api.ID]bool{}
	for _, act := range p.Actions {
		if seen[act.ID] || act.Guest == nil || (act.Action == plan.ActSkip && act.Reason == plan.ReasonExists) {
			continue
		}
		seen[act.ID] = true
		prob, err := plan.OtherKind(ctx, e.host, act.Guest)
		if err != nil {
			a.fail(p.Verb, err)
			return err
		}
		if prob != nil {
			problems = append(problems, *prob)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	err := &api.InvalidError{Problems: problems}
	a.fail(p.Verb, err)
	return err
}

// prepare loads the config, checks the targets and opens the environment.
func (a *app) prepare(verb string, args []string) (*env, []api.ID, error) {
	cfg, err := a.loadConfig(verb)
	if err != nil {
		return nil, nil, err
	}
	targets, err := parseTargets(cfg, args)
	if err != nil {
		a.fail(verb, err)
		return nil, nil, err
	}
	e, err := a.open(cfg)
	if err != nil {
		a.fail(verb, err)
		return nil, nil, err
	}
	return e, targets, nil
}

// execute runs (or, with --dry-run, prints) a plan.
func (a *app) execute(ctx context.Context, e *env, p *plan.Plan) error {
	if err := a.kindCheck(ctx, e, p); err != nil {
		return err
	}
	if err := a.preflight(e, p); err != nil {
		return err
	}
	if a.opts.DryRun {
		return a.dryRun(ctx, e, p)
	}
	var obs plan.Observer
	if a.opts.Output == "text" {
		obs = newProgress(a.stdout, a.colors(), p)
	}
	runner := &reconcilers.Runner{Workflows: e.flows, Config: e.cfg, Status: e.status}
	locks, err := lock.NewDir(filepath.Join(e.stateDir, "locks"))
	if err != nil {
		return err
	}
	out := plan.Execute(ctx, p, a.opts.Parallel, guarded(e, locks, runner.Run), obs)
	if a.opts.Output == "json" {
		if err := a.writeJSON(plan.Doc(p, out)); err != nil {
			return err
		}
	} else {
		summarize(a.stdout, a.colors(), out)
	}
	if !out.OK() {
		if a.opts.Output == "json" {
			for i, r := range out.Results {
				if r.Result == plan.ResultFailed {
					fmt.Fprintf(a.stderr, "phoenix: %s %s failed: %v\n", p.Actions[i].Action, p.Actions[i].ID, r.Err)
				}
			}
		}
		return errFailed
	}
	return nil
}

// dryRun prints a plan without running it, each create action followed by
// what it would change on the host, key by key.
func (a *app) dryRun(ctx context.Context, e *env, p *plan.Plan) error {
	for _, act := range p.Actions {
		if act.Action != plan.ActCreate {
			continue
		}
		changes, err := reconcilers.Diff(ctx, e.host, act.Guest)
		if err != nil {
			return fmt.Errorf("look up %s %s: %w", act.Kind, act.ID, err)
		}
		act.Changes = changes
	}
	if a.opts.Output == "json" {
		return a.writeJSON(plan.Doc(p, nil))
	}
	pal := a.colors()
	fmt.Fprintf(a.stdout, "%s: plan of %s (dry run, nothing changed)\n", p.Verb, plural(len(p.Actions), "action"))
	lines := strings.SplitAfter(p.String(), "\n")
	for i, act := range p.Actions {
		fmt.Fprint(a.stdout, lines[i])
		if act.Action != plan.ActCreate {
			continue
		}
		if len(act.Changes) == 0 {
			fmt.Fprintln(a.stdout, "        no change on the host")
		}
		printChanges(a.stdout, pal, "        ", act.Changes)
	}
	return nil
}

func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// planVerb is the shape shared by the verbs that plan and execute.
func (a *app) planVerb(use, short, long string, plan func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  needIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, targets, err := a.prepare(cmd.Name(), args)
			if err != nil {
				return err
			}
			if !a.opts.DryRun {
				release, err := a.writerLock(cmd.Context(), cmd.Name())
				if err != nil {
					a.fail(cmd.Name(), err)
					return err
				}
				defer release()
			}
			p, err := plan(cmd.Context(), e, targets)
			if err != nil {
				a.fail(cmd.Name(), err)
				return err
			}
			return a.execute(cmd.Context(), e, p)
		},
	}
	cmd.Flags().BoolVar(&a.opts.DryRun, "dry-run", false, "print the plan, each action with its reason, and change nothing")
	a.bindWaitLock(cmd)
	return cmd
}

func (a *app) createCommand() *cobra.Command {
	return a.planVerb("create ID...", "Create what is missing: the named guests get the full create workflow, existing dependencies are skipped",
		`create resolves the named guests' dependency chain (clone sources and
dependencies). Every named guest gets the full create workflow; every other
guest of the chain is created only when it does not exist yet.`,
		func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error) {
			return plan.Create(ctx, e.cfg, targets, e.lookup())
		})
}

// convergeSentence is the old tool's description of converge, kept word
// for word for its users; the short help puts it after an imperative head
// and drops the final period, like the other verbs'.
const convergeSentence = "Creates a guest if it doesn't exist, and forcefully re-applies all configurations and features for the guest and its entire dependency chain."

const convergeShort = "Repair a chain: creates a guest if it doesn't exist, and forcefully re-applies all configurations and features for the guest and its entire dependency chain"

const convergeLong = convergeSentence + `

converge runs the full create workflow on every guest of the named guests'
chains (clone sources and dependencies), existing or not, dependencies
first. With --dry-run it prints each action with what it would change on the
host, key by key. When a phoenix controller runs on the state dir, converge
hands the request to it (the converge annotation) and waits for the outcome.`

func (a *app) convergeCommand() *cobra.Command {
	cmd := a.planVerb("converge ID...", convergeShort, convergeLong,
		func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error) {
			return plan.Converge(e.cfg, targets), nil
		})
	a.handOffConverge(cmd)
	return cmd
}

func (a *app) startCommand() *cobra.Command {
	return a.planVerb("start ID...", "Start the named guests and the guests they depend on (dependencies first)", "",
		func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error) {
			return plan.Start(ctx, e.cfg, targets, e.lookup())
		})
}

func (a *app) stopCommand(verb, short string) *cobra.Command {
	return a.planVerb(verb+" ID...", short, "",
		func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error) {
			return plan.Stop(ctx, e.cfg, verb, targets, e.lookup())
		})
}

func (a *app) deleteCommand() *cobra.Command {
	var force bool
	cmd := a.planVerb("delete ID...", "Delete the named guests (only those); refuses while other existing guests need them, unless --force",
		`delete stops and destroys the named guests, and no others. It refuses (exit 2)
when an existing guest clones from or depends on one of them, unless --force.`,
		func(ctx context.Context, e *env, targets []api.ID) (*plan.Plan, error) {
			return plan.Delete(ctx, e.cfg, targets, e.lookup(), force)
		})
	cmd.Flags().BoolVar(&force, "force", false, "delete even when other existing guests clone from or depend on the guest")
	return cmd
}

func (a *app) letsGoCommand() *cobra.Command {
	cmd := a.planVerb("LetsGo", "Create every guest (full workflow, dependency order), then start them by boot order",
		`LetsGo runs the full create workflow on every guest in dependency order, then
starts every non-template guest whose start_at_boot is not false, by
(boot_order, ID).`,
		func(ctx context.Context, e *env, _ []api.ID) (*plan.Plan, error) {
			return plan.LetsGo(e.cfg), nil
		})
	cmd.Aliases = []string{"up", "letsgo"}
	cmd.Args = cobra.NoArgs
	return cmd
}

// guarded runs each action under its guest's lock, shared with other phoenix
// processes on the state dir. A dependency the plan would create is skipped
// when another process finished it while this one waited; guests the user
// named always get their workflow.
func guarded(e *env, locks *lock.Dir, run plan.RunFunc) plan.RunFunc {
	return func(ctx context.Context, a *plan.Action, report func(plan.StepResult)) plan.ActionResult {
		unlock, err := locks.Lock(ctx, "guest-"+a.ID.String())
		if err != nil {
			return plan.ActionResult{Result: plan.ResultCancelled, Err: fmt.Errorf("%s %s: %w", a.Action, a.ID, err)}
		}
		defer unlock()
		if a.Action == plan.ActCreate && a.Reason == plan.ReasonMissingDependency {
			done, err := reconcilers.UpToDate(ctx, e.host, e.status, a)
			if err != nil {
				return plan.ActionResult{Result: plan.ResultFailed, Err: fmt.Errorf("look up %s %s: %w", a.Kind, a.ID, err)}
			}
			if done {
				return plan.ActionResult{Result: plan.ResultSkipped}
			}
		}
		return run(ctx, a, report)
	}
}

// lookup tells planning what the host and the status files say of a guest.
func (e *env) lookup() plan.Lookup {
	return plan.HostLookup(e.host, e.cfg, e.status)
}
