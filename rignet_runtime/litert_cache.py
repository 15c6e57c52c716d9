"""An XNNPACK weight cache for the on-device runner: a `CompiledModel` behind the `Interpreter` API.

What it is for: a cold start. The classic `ai_edge_litert.interpreter.Interpreter` repacks every
weight for XNNPACK at the first call of each process (about half of a one-image run of a
ResNet-18 RIGNet, ~0.6 s of ~1.2 s). `ai_edge_litert`'s `CompiledModel` can keep the packed
weights in a file (`CpuOptions(xnnpack_weight_cache_path=FILE)`): the first process writes it,
later processes map it instead of packing. The classic Interpreter cannot use such a cache, so
`CachedInterpreter` wraps a `CompiledModel` in the part of the Interpreter API that
the runtime uses (`get_signature_list`, `get_signature_runner(name)` -> a callable with
`get_input_details` and `get_output_details`); `segmenters.make_interpreter(path,
weight_cache=DIR)` returns one.

Like the rest of the runtime, this module imports NumPy and `ai_edge_litert` only (never
TensorFlow or Keras).

What it takes care of (each found by measurement, see docs/EXPORT.md):
    * a cache from another model file with the same layout is accepted by LiteRT and silently
      gives wrong outputs, so the cache file's name identifies the model file (`cache_file_for`:
      name, size, modification time, device and inode, a sample of its bytes, LiteRT version);
    * processes building the same cache at once corrupt it, so each builds into its own
      temporary file, renamed into place once `CompiledModel.from_file` has returned (the
      cache is complete by then). LiteRT itself writes that file, at the path it is given,
      so the package's atomic writer (`atomic.replacing`, which creates and fills its own
      temporary file) does not fit: only the final `os.replace` is done here;
    * a cache that cannot be read or written (an unwritable folder) is logged, never raised:
      the model then loads without one;
    * with a graph whose activations are quantized (the "int8" and "int8_float_gates"
      precisions), the cache changes the outputs (LiteRT 2.3: 78 of 4615 labels of a small
      ui 2 graph; the packed weights seem to hold the input zero point of the first op that
      uses them, while the unrolled iterations share weights), so such graphs get no cache
      (`quantized_activations`);
    * the converter stores equal int8 weights once, and per-channel quantisation makes the
      weights of one convolution folded with two batch norms' statistics (the ungated and
      gated passes of `recurrent_batch_norm="gated_passes"`) equal int8 values with other
      scales; the cache packs such a buffer once, with the scales and bias of its first use
      (LiteRT 2.3: half the labels of a "dynamic_int8" ui 2 graph changed), so a graph with
      a weight buffer used at two scales gets no cache (`rescaled_shared_weights`);
    * `CompiledModel` prints some 30 INFO/WARNING lines to stderr while loading, and some more
      at its first run: both are captured, and written out only when they fail; releasing
      it prints three more, left out (`close`, also when the object is collected);
    * `CompiledModel`'s default is one thread: the thread count is always passed.
"""

import hashlib
import logging
import os
import sys
import weakref

import numpy as np

from .litert_log import quietly, without_routine_lines

CACHE_SUFFIX = ".xnnpack_cache"
# Tensor types of quantized activations: an op producing one marks a graph the cache would break.
QUANTIZED_TYPES = (np.int8, np.uint8, np.int16)
DEFAULT_THREADS = 2
# Bytes of the model file hashed into the cache name, at its start, middle and end.
FINGERPRINT_CHUNK = 1 << 16

logger = logging.getLogger(__name__)


def litert_version():
    """The installed `ai_edge_litert` version ("2.3.0"), or "unknown"."""
    import ai_edge_litert

    return str(getattr(ai_edge_litert, "__version__", "unknown"))


def _fingerprint(path, size):
    """A short hash of the model file's first, middle and last `FINGERPRINT_CHUNK` bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for offset in sorted(
            {0, max(0, size // 2 - FINGERPRINT_CHUNK // 2), max(0, size - FINGERPRINT_CHUNK)}
        ):
            f.seek(offset)
            digest.update(f.read(FINGERPRINT_CHUNK))
    return digest.hexdigest()[:12]


def cache_file_for(model_path, cache_dir):
    """The weight cache file of a model file, inside `cache_dir`.

    The name identifies the file, so that a changed, replaced or other model never meets a
    cache made for another one (LiteRT would accept it and compute wrong outputs):
    "<name>.<size>-<mtime_ns>-<device>-<inode>-<sample hash>.litert-<version>.xnnpack_cache".
    A rename within a file system keeps the name (the same file); a rewrite, a copy or a touch
    changes it. Old cache files are not removed.

    Args:
        model_path: a `.tflite` file (it must exist).
        cache_dir: the cache folder (need not exist).

    Returns:
        The cache file's path (str).
    """
    model_path = os.fspath(model_path)
    stat = os.stat(model_path)
    identity = (
        f"{stat.st_size}-{stat.st_mtime_ns}-{stat.st_dev}-{stat.st_ino}-"
        f"{_fingerprint(model_path, stat.st_size)}"
    )
    name = f"{os.path.basename(model_path)}.{identity}.litert-{litert_version()}{CACHE_SUFFIX}"
    return os.path.join(os.fspath(cache_dir), name)


def quantized_activations(interpreter):
    """Whether an Interpreter's first subgraph has an op that outputs a quantized tensor
    (int8, uint8 or int16): a graph quantized beyond its weights, which gets no cache. Weights
    alone (the "dynamic_int8" and "float16" precisions) are constants, never op outputs.

    Uses `Interpreter._get_ops_details` (works without allocating tensors); where that fails,
    the answer is True (no cache)."""
    try:
        for op in interpreter._get_ops_details():
            for index in op["outputs"]:
                if interpreter._get_tensor_details(index, 0)["dtype"] in QUANTIZED_TYPES:
                    return True
    except (AttributeError, KeyError, TypeError, ValueError):
        return True
    return False


def rescaled_shared_weights(model_path):
    """Whether a `.tflite` file holds an int8 constant buffer that tensors of different
    quantisation scales share (see the module docstring): such a graph gets no cache.

    Reads the flatbuffer (memory-mapped) with LiteRT's schema; where that fails, the answer is
    True (no cache)."""
    import mmap
    import struct

    from ai_edge_litert import schema_py_generated as schema

    try:
        with open(model_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            model = schema.Model.GetRootAs(m, 0)
            scales = {}  # buffer index -> the scales of the tensors that read it
            for g in range(model.SubgraphsLength()):
                graph = model.Subgraphs(g)
                for t in range(graph.TensorsLength()):
                    tensor = graph.Tensors(t)
                    if tensor.Type() != schema.TensorType.INT8 or tensor.Buffer() == 0:
                        continue
                    if model.Buffers(tensor.Buffer()).DataLength() == 0 and not (
                        model.Buffers(tensor.Buffer()).Size()
                    ):
                        continue  # an activation, not a constant
                    q = tensor.Quantization()
                    key = q.ScaleAsNumpy().tobytes() if q is not None and q.ScaleLength() else b""
                    seen = scales.setdefault(tensor.Buffer(), key)
                    if seen != key:
                        return True
    except (OSError, ValueError, AttributeError, TypeError, IndexError, struct.error):
        return True
    return False


def _cache_messages(text):
    """The lines of LiteRT's load log about the weight cache (errors: unreadable, rebuilt)."""
    return [
        line.strip()
        for line in text.splitlines()
        if "weight cache" in line.lower() or "weight_cache" in line.lower()
    ]


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _from_file(model_path, threads, cache_path):
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.options import CpuOptions, Options

    cpu = CpuOptions(num_threads=int(threads), xnnpack_weight_cache_path=cache_path)
    return quietly(lambda: CompiledModel.from_file(model_path, options=Options(cpu_options=cpu)))


def load_compiled_model(model_path, cache_file=None, threads=DEFAULT_THREADS):
    """A `CompiledModel` (CPU, XNNPACK) over `model_path`, using or writing `cache_file`.

    An existing, non-empty `cache_file` is used. Otherwise the cache is built into a temporary
    file of this process beside it and renamed to `cache_file` once loading has succeeded, so
    that concurrent first runs never share a half-written file. When loading with the cache
    fails, or the cache cannot be written, a warning is logged and the model loads (again)
    without one.

    Args:
        model_path: a `.tflite` file.
        cache_file: the cache file (see `cache_file_for`); None: no cache.
        threads: CPU threads.

    Returns:
        (CompiledModel, cache state): "reused" (the cache was read), "written" (this call
        wrote it), or "off" (no cache: none asked for, or it failed and was logged).

    Raises:
        RuntimeError or ValueError from LiteRT when the model does not load even without a
        cache; what LiteRT printed while trying is written to stderr first.
    """
    model_path = os.fspath(model_path)
    attempts = [("", "off")]
    temporary = None
    if cache_file is not None:
        if os.path.isfile(cache_file) and os.path.getsize(cache_file) > 0:
            attempts.insert(0, (cache_file, "reused"))
        else:
            temporary = f"{cache_file}.{os.getpid()}.tmp"
            attempts.insert(0, (temporary, "written"))
    for number, (cache_path, state) in enumerate(attempts, 1):
        try:
            model, text = _from_file(model_path, threads, cache_path)
        except (RuntimeError, ValueError) as error:
            if temporary is not None:
                _remove(temporary)
            if number == len(attempts):
                sys.stderr.write(getattr(error, "litert_log", ""))
                sys.stderr.flush()
                raise
            logger.warning(
                "%s: loading with the XNNPACK weight cache %s failed (%s); loading without it",
                model_path,
                cache_path,
                error,
            )
            continue
        messages = _cache_messages(text)
        if state == "written":
            try:
                if not os.path.isfile(temporary) or os.path.getsize(temporary) == 0:
                    raise OSError("LiteRT wrote no cache file")
                os.replace(temporary, cache_file)
            except OSError as error:
                _remove(temporary)
                logger.warning(
                    "%s: the XNNPACK weight cache %s could not be written (%s)%s",
                    model_path,
                    cache_file,
                    error,
                    "".join(f"; {m}" for m in messages),
                )
                return model, "off"
        if messages:
            logger.warning("%s: XNNPACK weight cache: %s", model_path, "; ".join(messages))
        return model, state
    raise AssertionError("unreachable")


def _release(compiled):
    """Closes a `CompiledModel` and then its environment (whose release logs LiteRT's routine
    "DestroyAccelerator" lines, left out; any other line is written to stderr)."""

    def close():
        environment = compiled.environment
        compiled.close()
        environment.close()

    without_routine_lines(close)


class CachedSignatureRunner:
    """One signature of a `CachedInterpreter`, called like the Interpreter's signature runner.

    Call: `runner(**inputs)` with one NumPy array per input name, each of the signature's
    exact dtype and (fixed) shape, e.g. `images` uint8 (1, H, W, 3) -> {output name: a new
    NumPy array}, e.g. `class_map` int32 (1, H, W) and `probabilities` float32 (1, H, W, C).
    The input and output buffers are made once and reused by every call.
    """

    def __init__(self, owner, metadata, signature_key):
        self.signature_key = signature_key
        self._owner = owner  # the CachedInterpreter, whose CompiledModel runs the signature
        compiled = owner.compiled
        self._metadata = metadata  # the Interpreter signature runner that describes the tensors
        names = compiled.get_signature_list()[signature_key]
        self._input_specs = self._specs(compiled.get_input_tensor_details(signature_key))
        self._output_specs = self._specs(compiled.get_output_tensor_details(signature_key))
        self._inputs = {
            n: compiled.create_input_buffer_by_name(signature_key, n) for n in names["inputs"]
        }
        self._outputs = {
            n: compiled.create_output_buffer_by_name(signature_key, n) for n in names["outputs"]
        }

    @staticmethod
    def _specs(details):
        return {
            name: (tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]))
            for name, detail in details.items()
        }

    def get_input_details(self):
        """{input name: details} as the Interpreter gives them ("shape", "shape_signature",
        "dtype", "quantization", ...)."""
        return self._metadata.get_input_details()

    def get_output_details(self):
        """{output name: details} as the Interpreter gives them."""
        return self._metadata.get_output_details()

    def __call__(self, **inputs):
        if self._owner.closed:
            raise ValueError(f"{self._owner.model_path}: the interpreter was closed")
        if set(inputs) != set(self._inputs):
            raise ValueError(
                f"signature {self.signature_key!r} takes inputs {sorted(self._inputs)}; "
                f"received {sorted(inputs)}"
            )
        arrays = {}
        for name, value in inputs.items():
            shape, dtype = self._input_specs[name]
            arrays[name] = np.asarray(value)
            if arrays[name].dtype != dtype or arrays[name].shape != shape:
                raise ValueError(
                    f"input {name!r} of signature {self.signature_key!r} must be {dtype} "
                    f"{shape}; received {arrays[name].dtype} {arrays[name].shape}"
                )
        return self._owner.first_quietly(lambda: self._run(arrays))

    def _run(self, arrays):
        for name, array in arrays.items():
            self._inputs[name].write(array)
        self._owner.compiled.run_by_name(self.signature_key, self._inputs, self._outputs)
        outputs = {}
        for name, buffer in self._outputs.items():
            shape, dtype = self._output_specs[name]
            outputs[name] = buffer.read(int(np.prod(shape)), dtype).reshape(shape)
        return outputs


class CachedInterpreter:
    """A `CompiledModel` with an XNNPACK weight cache, in the Interpreter API the runner uses.

    The cache file is `cache_file_for(model_path, cache_dir)`; the folder is created if
    missing. A cache that cannot be used is logged (logger `litert_cache.logger`)
    and the model runs without one, as does a graph with quantized activations
    (`quantized_activations`); outputs are those of the classic Interpreter (XNNPACK either
    way).

    Tensor descriptions (signature list, input and output details, with "shape_signature")
    come from a classic Interpreter over the same file made without delegates, which costs a
    millisecond and allocates nothing: `CompiledModel` reports dynamic dimensions as 1.

    Args:
        model_path: a `.tflite` file.
        cache_dir: the cache folder; None: no cache (a `CompiledModel` all the same).
        threads: CPU threads. Default 2.

    Attributes:
        cache_file: the cache file, or None. cache_state: "reused", "written" or "off" (see
        `load_compiled_model`).

    Raises:
        RuntimeError or ValueError (from LiteRT) when the file is not a model LiteRT loads.
    """

    def __init__(self, model_path, cache_dir, threads=DEFAULT_THREADS):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.model_path = os.fspath(model_path)
        self.threads = int(threads)
        self.cache_file = None
        self._metadata = Interpreter(
            model_path=self.model_path,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        if cache_dir is not None and quantized_activations(self._metadata):
            logger.warning(
                "%s: no XNNPACK weight cache for a graph with quantized activations (LiteRT %s "
                "computes other outputs with one)",
                self.model_path,
                litert_version(),
            )
        elif cache_dir is not None and rescaled_shared_weights(self.model_path):
            logger.warning(
                "%s: no XNNPACK weight cache for a graph whose int8 weight buffers serve "
                "several scales (LiteRT %s would pack them with their first scales only)",
                self.model_path,
                litert_version(),
            )
        elif cache_dir is not None:
            try:
                os.makedirs(cache_dir, exist_ok=True)
                self.cache_file = cache_file_for(self.model_path, cache_dir)
            except OSError as error:
                logger.warning(
                    "%s: no XNNPACK weight cache (folder %r: %s)", self.model_path, cache_dir, error
                )
        self._ran = False
        self.compiled, self.cache_state = load_compiled_model(
            self.model_path, self.cache_file, self.threads
        )
        # Released by `close()`, or when this object is collected, or at exit.
        self._finalizer = weakref.finalize(self, _release, self.compiled)

    def close(self):
        """Releases the `CompiledModel` and its LiteRT environment now, with LiteRT's routine
        release lines left out of stderr (otherwise they appear whenever the object is
        collected). The object cannot run afterwards."""
        self._finalizer()

    @property
    def closed(self):
        """Whether `close()` has released the model (it cannot run then)."""
        return not self._finalizer.alive

    def get_signature_list(self):
        """{signature name: {"inputs": [names], "outputs": [names]}}."""
        return self._metadata.get_signature_list()

    def get_signature_runner(self, signature_key):
        """A `CachedSignatureRunner` for one signature; ValueError for an unknown name."""
        if signature_key not in self.get_signature_list():
            raise ValueError(f'Invalid signature_key provided: "{signature_key}".')
        return CachedSignatureRunner(
            self, self._metadata.get_signature_runner(signature_key), signature_key
        )

    def first_quietly(self, call):
        """`call()`; the first time, with LiteRT's stderr log captured (the first buffer write
        creates another LiteRT environment, which logs some 10 lines) and written out only if
        `call()` raises."""
        if self._ran:
            return call()
        try:
            result, _ = quietly(call)
        except Exception as error:
            sys.stderr.write(getattr(error, "litert_log", ""))
            sys.stderr.flush()
            raise
        self._ran = True
        return result
