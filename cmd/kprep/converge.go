package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/report"
)

// runEngine loads the inventory, runs the engine in the given mode with
// live or line output, and prints the report the way -o asks.
func (g *globalOptions) runEngine(mode provision.Mode, failFast bool) (*provision.Report, error) {
	c, hosts, err := g.loadInventory()
	if err != nil {
		return nil, err
	}
	return g.runSteps(c, hosts, runSpec{mode: mode, steps: allSteps(), phases: g.phases, failFast: failFast})
}

// runSpec is what one run of the engine does.
type runSpec struct {
	mode     provision.Mode
	steps    []provision.Step
	phases   []string // nil: every phase
	failFast bool
	// command names the run in the report when it is not the mode's
	// ("reset", whose steps run in apply mode).
	command provision.Mode
}

// runSteps runs the spec's steps on hosts of c, with live or line output,
// and prints the report the way -o asks.
func (g *globalOptions) runSteps(c *inventory.Cluster, hosts []*inventory.Host, spec runSpec) (*provision.Report, error) {
	mode := spec.mode
	ctx, stop := interruptContext()
	defer stop()

	names := make([]string, len(hosts))
	width := 0
	for i, h := range hosts {
		names[i] = h.Name
		width = max(width, len(h.Name))
	}
	style := g.style()
	var (
		observer provision.Observer = provision.NopObserver{}
		logger   commandLogger
		finish   = func() {}
	)
	switch {
	case g.output == "json":
		if g.verbose {
			logger = report.NewLines(g.stderr, report.Style{}, width)
		}
	case isTerminal(g.stdout) && !g.verbose:
		live := report.NewLive(g.stdout, style, names)
		observer, logger, finish = live, live, live.Close
	default:
		lines := report.NewLines(g.stdout, style, width)
		observer, logger = lines, lines
	}
	if !g.verbose {
		logger = nil
	}
	rep, err := provision.Run(ctx, c, newDialer(logger), provision.Options{
		Mode:        mode,
		Steps:       spec.steps,
		Phases:      spec.phases,
		Hosts:       hosts,
		Concurrency: g.concurrency,
		FailFast:    spec.failFast,
		Debug:       g.verbose,
		Observer:    observer,
	})
	finish()
	if err != nil {
		return nil, err
	}
	if spec.command != "" {
		rep.Mode = spec.command
	}
	if g.output == "json" {
		return rep, report.JSON(g.stdout, rep)
	}
	if mode == provision.ModeFacts {
		report.FactsTable(g.stdout, rep)
		return rep, nil
	}
	report.Summary(g.stdout, rep, style)
	return rep, nil
}

// interruptContext ends on the first Ctrl-C or SIGTERM, so running
// commands stop cleanly and the report says which hosts were left
// mid-step; a second signal exits at once.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-signals:
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-signals:
			os.Exit(130)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(signals)
		cancel()
	}
}
