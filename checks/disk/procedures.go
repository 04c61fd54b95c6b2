package disk

import (
	_ "embed"

	"github.com/l2agent/l2agent/configs"
)

//go:embed procedures.yaml
var procedures []byte

func init() { configs.RegisterProcedures("checks/disk/README.md#procedures", procedures) }
