package deps
import (
_ "github.com/spf13/cobra"
_ "golang.org/x/crypto/ssh"
_ "github.com/pkg/sftp"
_ "gopkg.in/yaml.v3"
_ "github.com/coreos/go-systemd/v22/unit"
_ "github.com/hashicorp/go-version"
_ "golang.org/x/sync/errgroup"
_ "golang.org/x/term"
_ "github.com/pelletier/go-toml/v2"
_ "github.com/google/go-cmp/cmp"
)
