"""Do N MPS clients with CUDA_DEVICE_MAX_CONNECTIONS=c start (context, streams, nvjpeg)?"""
import io, os, sys, time, traceback
import multiprocessing as mp
sys.path.insert(0, os.getcwd())

def client(args):
    k, barrier = args
    try:
        import torch, torchvision.io as tio
        import numpy as np
        from PIL import Image
        t0 = time.time()
        torch.cuda.set_device(0)
        torch.zeros(1, device="cuda")
        ss = [torch.cuda.Stream() for _ in range(4)]
        buf = io.BytesIO(); Image.fromarray(np.full((64, 64, 3), 99, np.uint8)).save(buf, "JPEG")
        t = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
        with torch.cuda.stream(ss[0]):
            tio.decode_jpeg([t] * 4, device="cuda")
        torch.cuda.synchronize()
        r = f"ok {time.time()-t0:.1f}s"
    except Exception as e:
        r = "FAIL " + repr(e)[:200]
    try:
        barrier.wait(timeout=60)
    except Exception:
        pass
    return r

if __name__ == "__main__":
    from dsd.train.mps import mps
    ctx = mp.get_context("spawn")
    with mps(None, print) as on, ctx.Manager() as m:
        print("mps", on, flush=True)
        for c in ("8", "16", "32"):
            for n in (4, 8):
                os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = c
                b = m.Barrier(n)
                with ctx.Pool(n) as pool:
                    rs = pool.map(client, [(k, b) for k in range(n)])
                print(f"connections {c} clients {n}:", rs, flush=True)
