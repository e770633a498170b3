"""Runs the S3 object store's C++ tests (pfs/s3_object_store_test.cc: put,
ranged get, multipart, LIST past 1000 keys, the disk cache) against s3rver on
127.0.0.1."""

import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN_DIR, S3rver


class S3StoreTest(unittest.TestCase):

    def test_s3_object_store(self):
        tmp = tempfile.mkdtemp(prefix="tusk-s3store-")
        s3 = S3rver(os.path.join(tmp, "s3"), os.path.join(tmp, "s3rver.log"))
        s3.start(bucket="store")
        try:
            env = dict(s3.env(), TUSK_TEST_S3_ENDPOINT=s3.endpoint, TUSK_TEST_S3_BUCKET="store")
            r = subprocess.run([os.path.join(BIN_DIR, "s3_object_store_test")], env=env,
                               capture_output=True, timeout=600)
            out = r.stdout.decode(errors="replace")
            self.assertEqual(r.returncode, 0, out[-6000:] + r.stderr.decode(errors="replace")[-2000:])
            self.assertIn("[  PASSED  ] 5 tests", out)
        finally:
            s3.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
