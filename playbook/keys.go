package playbook

import (
	"reflect"
	"slices"

	"github.com/kubeplay/kubeplay/internal/ytree"
)

// TopKeys are the keys a playbook file may have (for the schema).
func TopKeys() []string { return slices.Clone(topKeys) }

// PlayKeys are the keys a play may have.
func PlayKeys() []string { return slices.Clone(playKeys) }

// ParamTypes are the types a param may declare.
func ParamTypes() []ParamType {
	return []ParamType{TString, TInt, TBool, TDuration, TList, TMap, TVersion}
}

// CommonStepKeys are the keys every step may have besides its module, with
// the Go type each decodes into (rollback: a list of steps).
func CommonStepKeys() map[string]reflect.Type {
	t := reflect.TypeOf(commonYAML{})
	out := map[string]reflect.Type{"rollback": reflect.TypeOf([]any{})}
	for name, idx := range ytree.StructFields(t) {
		out[name] = t.FieldByIndex(idx).Type
	}
	return out
}
