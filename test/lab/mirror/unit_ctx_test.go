package mirror

import "context"

// ctxT shortens build callbacks in tests.
type ctxT = context.Context
