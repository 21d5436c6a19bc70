"""Writes tests/fixtures/bad_window.onnx: a tiny model whose input window is 16 packets, not 32.

Run with the training venv (needs the ``onnx`` package): used by tests/test_model.py to
check that a model not fitting the contract is refused at load.
"""

import onnx
from onnx import TensorProto, helper

inp = helper.make_tensor_value_info("csi", TensorProto.FLOAT, ["batch", 2, 16, 90])
outs = {
    "presence": ["batch", 2],
    "keypoints": ["batch", 2, 17, 3],
    "boxes": ["batch", 2, 4],
    "activity": ["batch", 2, 5],
}
nodes, infos, inits = [], [], []
for name, shape in outs.items():
    n = 1
    for d in shape[1:]:
        n *= d
    shape_t = helper.make_tensor(f"{name}_shape", TensorProto.INT64, [len(shape)], [-1] + shape[1:])
    inits.append(helper.make_tensor(f"{name}_idx", TensorProto.INT64, [n], list(range(n))))
    inits.append(shape_t)
    nodes.append(helper.make_node("Flatten", ["csi"], [f"{name}_flat"], axis=1))
    nodes.append(helper.make_node("Gather", [f"{name}_flat", f"{name}_idx"], [f"{name}_g"], axis=1))
    nodes.append(helper.make_node("Reshape", [f"{name}_g", f"{name}_shape"], [name]))
    infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
graph = helper.make_graph(nodes, "bad_window", [inp], infos, inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "tests/fixtures/bad_window.onnx")
