// Command genlab writes a large, valid phoenix lab (the three desired-state
// files) for scale tests, benchmarks and controller soak runs against the
// sim backend; internal/fake/lab describes what it holds.
//
//	go run ./hack/genlab -n 10000 -out /tmp/lab10k
//	phoenix --config-dir /tmp/lab10k --backend sim validate
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/lab"
)

func main() {
	o := lab.Defaults()
	var out string
	flag.IntVar(&o.N, "n", o.N, "total number of guests (LXC + VM)")
	flag.StringVar(&out, "out", "", "output `dir`ectory (created if missing; required)")
	flag.Float64Var(&o.VMShare, "vm-share", o.VMShare, "fraction of guests that are VMs, 0..1")
	flag.IntVar(&o.Depth, "depth", o.Depth, "clone chain depth: templates per template family")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "random seed; the same seed gives the same files")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: genlab -out DIR [-n N] [-vm-share F] [-depth D] [-seed S]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	l, err := lab.Generate(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genlab:", err)
		os.Exit(2)
	}
	if err := l.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "genlab:", err)
		os.Exit(1)
	}
	fmt.Println(l.Summary(out))
}
