package lab

import (
	"context"
	"fmt"
)

// PersonalityLayers builds (or takes from the cache) the base root file
// system and one personality's layer, and returns them as overlay lower
// folders, top first. Tests that make machines of their own from the lab's
// images (test/e2e's Vagrant machines) start from these; they must not
// write into them.
func PersonalityLayers(ctx context.Context, o Options, personality string) ([]string, error) {
	o.OS, o.Hosts, o.NoMirror = []string{personality}, 1, true
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	built, err := buildImages(ctx, o, newLogger(o.Log))
	if err != nil {
		return nil, err
	}
	if len(built.layers[personality]) == 0 {
		return nil, fmt.Errorf("personality %s: no layers built", personality)
	}
	return built.layers[personality], nil
}
