import json

import numpy as np
import onnxruntime as ort
from PIL import Image

session = ort.InferenceSession("classify.onnx")
meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
height, width = meta["input_size"]
image = Image.open("sneaker.png").convert("L").resize((width, height))
x = np.asarray(image, dtype=np.float32)[None, None] / 255   # (1, 1, H, W) in [0, 1]
probabilities = session.run(None, {"image": x})[0][0]        # normalisation and softmax are in the graph
print(meta["classes"][probabilities.argmax()], f"{probabilities.max():.3f}")
