"""Writes the contract-breaking test models in tests/fixtures/ (needs the ``onnx`` package):

- ``bad_window.onnx``: the input window is 16 packets, not 32;
- ``dense_half.onnx``: a right window, but only one of the two dense-pose outputs;
- ``batch_of_one.onnx``: fits the contract as declared, but reshapes to a fixed batch of
  one inside, so it runs on one window and fails on two.

Used by tests/test_model.py and tests/test_live_model.py to check that a model not
fitting the contract is refused at load, and by tests/test_errors.py for a model that
fails while running.
"""

import onnx
from onnx import TensorProto, helper

BASE = {
    "presence": ["batch", 2],
    "keypoints": ["batch", 2, 17, 3],
    "boxes": ["batch", 2, 4],
    "activity": ["batch", 2, 5],
}


def write(path: str, window: int, outs: dict, batch: int = -1) -> None:
    inp = helper.make_tensor_value_info("csi", TensorProto.FLOAT, ["batch", 2, window, 90])
    nodes, infos, inits = [], [], []
    for name, shape in outs.items():
        n = 1
        for d in shape[1:]:
            n *= d
        dims = [batch, *shape[1:]]
        inits.append(helper.make_tensor(f"{name}_shape", TensorProto.INT64, [len(shape)], dims))
        inits.append(helper.make_tensor(f"{name}_idx", TensorProto.INT64, [n],
                                        [i % (2 * window * 90) for i in range(n)]))
        nodes.append(helper.make_node("Flatten", ["csi"], [f"{name}_flat"], axis=1))
        nodes.append(helper.make_node("Gather", [f"{name}_flat", f"{name}_idx"], [f"{name}_g"],
                                      axis=1))
        nodes.append(helper.make_node("Reshape", [f"{name}_g", f"{name}_shape"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, path.rsplit("/", 1)[-1], [inp], infos, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


write("tests/fixtures/bad_window.onnx", 16, BASE)
write("tests/fixtures/dense_half.onnx", 32, BASE | {"dense_part": ["batch", 2, 25, 8, 8]})
write("tests/fixtures/batch_of_one.onnx", 32, BASE, batch=1)
