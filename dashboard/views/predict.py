"""Predict: a finished run's model on images you upload, and its ONNX file to download."""

import tempfile
from pathlib import Path

import streamlit as st
from PIL import Image

from toptune.dashboard import data
from toptune.dashboard.widgets.ui import literal, nothing_yet, safely
from toptune.errors import ToptuneError
from toptune.models import export as exporter

COLUMNS = 4
path = data.store_path()
st.title("Predict")
st.caption("Every finished top-tuning and fine-tuning run saves its model. Choose one, drop images on it, and "
           "download it as one ONNX file: images in [0, 1] in, class scores out.")

runs = safely(data.model_runs, path)
if not runs:
    nothing_yet(path, "No saved model yet: every finished `toptune run` (top-tuning or fine-tuning) saves one.")


def label(run: dict) -> str:
    names = " · ".join([*(str(run[k]) for k in ("method", "backbone", "classifier") if run.get(k)),
                        data.dataset_name(run)])
    accuracy = f" · accuracy {run['accuracy']:.4f}" if run.get("accuracy") is not None else ""
    return f"{run['id']} · {names}{accuracy}"


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def model_of(store: str, run_id: str):
    # A model does not change once saved; rebuilding its backbone takes a second.
    return data.load_model(store, run_id)


labels = {r["id"]: label(r) for r in runs}
wanted = st.query_params.get("run")
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="predict_run",
                      index=list(labels).index(wanted) if wanted in labels else 0)
st.query_params["run"] = run_id
model = safely(model_of, str(path), run_id)
st.caption(f"{model.method} model · {len(model.classes)} classes · input {model.input_size} px")

left, right = st.columns([3, 1])
uploads = left.file_uploader("Images", type=["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"],
                             accept_multiple_files=True, key="predict_images")
top_k = right.number_input("top-k", min_value=1, max_value=max(1, len(model.classes)), value=min(3, len(model.classes)),
                           key="predict_top_k")

if uploads:
    images, names, unreadable = [], [], []
    for upload in uploads:
        try:
            with Image.open(upload) as img:
                img.load()
                images.append(img.convert("RGB"))
                names.append(upload.name)
        except Exception as exc:  # noqa: BLE001 - any undecodable upload is named and skipped
            unreadable.append(f"{upload.name} ({type(exc).__name__})")
    if unreadable:
        st.warning("Not images, skipped: " + literal(", ".join(unreadable)))
    if images:
        try:
            found = model.predictions(images)
        except ToptuneError as exc:
            st.error(literal(exc))
            st.stop()
        for start in range(0, len(images), COLUMNS):
            for column, image, name, best in zip(st.columns(COLUMNS), images[start:start + COLUMNS],
                                                 names[start:start + COLUMNS], found.top(int(top_k))[start:]):
                column.image(image, caption=name, width=160)
                column.markdown("  \n".join(f"**{literal(c)}** {s:.3f}" if i == 0 else f"{literal(c)} {s:.3f}"
                                            for i, (c, s) in enumerate(best)))

st.subheader("Download")
if st.button("Prepare the ONNX file", key="predict_export", icon=":material/download:"):
    try:
        with tempfile.TemporaryDirectory() as folder:
            target = exporter.export(model, Path(folder) / f"{run_id}.onnx", "onnx")
            st.session_state["onnx"] = (run_id, target.read_bytes())
    except ToptuneError as exc:
        st.error(literal(exc))
ready = st.session_state.get("onnx")
if ready and ready[0] == run_id:
    st.download_button(f"Download {run_id}.onnx ({len(ready[1]) / 2**20:.1f} MB)", ready[1], f"{run_id}.onnx",
                       "application/octet-stream", key="predict_download", on_click="ignore")
    st.caption(f"Input `images`: float32 [N, 3, {model.input_size}, {model.input_size}], RGB in [0, 1]. Output "
               "`scores`: [N, C]; the metadata `classes` names the columns.")
