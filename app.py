"""Entry point of the dashboard: page config and navigation only; each page lives in pages/."""
import streamlit as st

st.set_page_config(page_title="SSL Studio", page_icon="🧠", layout="wide")

st.title("SSL Studio")
st.markdown(
    "Self-supervised learning you can watch. The pipeline, in three steps:\n\n"
    "1. **Pretext task**: make a label out of the data itself (hide patches, rotate, corrupt, crop two views).\n"
    "2. **Feature learning**: train an encoder to solve it, on unlabelled images.\n"
    "3. **Transfer**: freeze the encoder and see how few labels a linear probe needs.\n\n"
    "The training dashboard is being built; today the engine runs from the command line: "
    "`python -m sslcore train --dataset mnist5k --task simclr`."
)
