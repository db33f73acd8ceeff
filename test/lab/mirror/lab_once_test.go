package mirror

import (
	"sync"
	"testing"
)

var (
	treeOnce  sync.Once
	builtTree *Tree
	buildErr  error
)

// testLog sends Build's progress lines to the test log.
type testLog struct{ t *testing.T }

// Write logs one progress line.
func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	return len(p), nil
}

func TestLabBuild(t *testing.T) {
	tree := labTree(t)
	t.Logf("root %s bin %s images %v", tree.Root, tree.BinDir, tree.Images)
}
