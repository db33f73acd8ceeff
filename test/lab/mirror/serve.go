package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Serve serves root over HTTP on addr (e.g. 192.168.77.1:8080) until ctx
// ends, logging each request to standard error.
func Serve(ctx context.Context, root, addr string) error {
	return ServeWithLog(ctx, root, addr, os.Stderr)
}

// ServeWithLog is Serve with each request logged to log, one line each
// (time, client, method, path, status, bytes), so a test can see which
// paths its hosts fetched.
func ServeWithLog(ctx context.Context, root, addr string, log io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mirror: listen on %s: %w", addr, err)
	}
	return serveListener(ctx, ln, Handler(root, log))
}

// serveListener serves h on ln until ctx ends, then shuts down gracefully.
func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("mirror: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("mirror: shut down %s: %w", ln.Addr(), err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler serves the files under root, read-only, logging each request to
// log (nil: no log).
func Handler(root string, log io.Writer) http.Handler {
	files := http.FileServer(http.Dir(root))
	var mu sync.Mutex // one line per request, never interleaved
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the lab mirror is read-only", http.StatusMethodNotAllowed)
			logRequest(log, &mu, r, http.StatusMethodNotAllowed, 0)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		logRequest(log, &mu, r, rec.status, rec.bytes)
	})
}

// logRequest writes one access-log line.
func logRequest(log io.Writer, mu *sync.Mutex, r *http.Request, status int, n int64) {
	if log == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(log, "%s %s %s %s %d %d\n", time.Now().UTC().Format(time.RFC3339), r.RemoteAddr, r.Method, r.URL.Path, status, n)
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// WriteHeader records the status.
func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes sent.
func (s *statusRecorder) Write(p []byte) (int, error) {
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}
