"""Django's own TestCase and TransactionTestCase classes, run by pytest-django."""

from catalog.models import Category
from django.test import TestCase, TransactionTestCase


class CategoryTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.extra = Category.objects.create(name="from-setup-test-data")

    def test_setup_test_data_is_there(self):
        self.assertTrue(Category.objects.filter(name="from-setup-test-data").exists())

    def test_seeded_rows_are_there_too(self):
        self.assertEqual(Category.objects.count(), 4)


class CategoryTransactionTestCase(TransactionTestCase):
    def test_writes_and_commits(self):
        Category.objects.create(name="unittest-tx")
        self.assertTrue(Category.objects.filter(name="unittest-tx").exists())

    def test_starts_without_the_other_tests_row(self):
        self.assertFalse(Category.objects.filter(name="unittest-tx").exists())
