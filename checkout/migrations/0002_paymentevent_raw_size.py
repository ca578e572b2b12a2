# Bounded storage of untrusted bodies (their size kept), and an index for the retention job.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('checkout', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='paymentevent',
            name='raw_size',
            field=models.PositiveIntegerField(blank=True, help_text='bytes received', null=True),
        ),
        migrations.AddField(
            model_name='paymentevent',
            name='raw_truncated',
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name='paymentevent',
            name='created_at',
            field=models.DateTimeField(auto_now_add=True, db_index=True),
        ),
        migrations.AlterField(
            model_name='paymentevent',
            name='raw_body',
            field=models.TextField(blank=True, help_text='verbatim when verified; else its first 2 KiB'),
        ),
    ]
