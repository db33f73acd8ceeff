package inventory

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

type structField struct {
	index  int
	quoted bool
}

type structFields struct {
	byName map[string]structField
	names  []string
}

// fieldsOf lists the YAML names of a struct's fields, in declaration order.
func fieldsOf(t reflect.Type) structFields {
	fs := structFields{byName: map[string]structField{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fs.byName[name] = structField{index: i, quoted: f.Tag.Get("kprep") == "quoted"}
		fs.names = append(fs.names, name)
	}
	return fs
}

// fieldAliases maps words people reach for (from ssh_config, Ansible, other
// tools) to our field names, for hints misspelling distance would miss.
var fieldAliases = map[string]string{
	"ip":           "address",
	"host":         "address",
	"hostname":     "name",
	"username":     "user",
	"key":          "privateKeyFile",
	"keyFile":      "privateKeyFile",
	"identityFile": "privateKeyFile",
	"sshKey":       "privateKeyFile",
	"timeout":      "connectTimeout",
	"mirrors":      "registryMirrors",
	"jump":         "bastion",
	"jumpHost":     "bastion",
	"podCIDR":      "podSubnet",
	"clusterCIDR":  "podSubnet",
	"serviceCIDR":  "serviceSubnet",
}

// unknownFieldHint says what an unknown key probably meant, and which field
// that is ("" when there is no good guess).
func unknownFieldHint(key string, known []string) (hint, meant string) {
	if strings.EqualFold(key, "password") || strings.EqualFold(key, "sudoPassword") {
		if slices.Contains(known, "passwordEnv") {
			return "; kprep never reads a password from the file: export it in an environment variable and give that variable's name in passwordEnv or sudoPasswordEnv", ""
		}
	}
	meant = fieldAliases[key]
	if !slices.Contains(known, meant) {
		meant = suggest(key, known)
	}
	if meant != "" {
		return fmt.Sprintf("; did you mean %q?", meant), meant
	}
	return "; known fields are " + strings.Join(known, ", "), ""
}
